package activity

import (
	"context"
	"log/slog"
	"time"
)

// purgeEvery is how often RunRetention deletes the events past retention.
const purgeEvery = time.Hour

// purgeBatch is how many events one purge statement deletes.
const purgeBatch = 10000

// RunRetention deletes the events older than retention now and then every
// hour, in batches (see Purge), until ctx ends. A retention of zero keeps
// events forever and returns at once.
func (s *Service) RunRetention(ctx context.Context, retention time.Duration, log *slog.Logger) error {
	if retention <= 0 {
		return nil
	}
	return every(ctx, purgeEvery, func() {
		n, err := s.Purge(ctx, s.Time().Add(-retention), purgeBatch)
		if err != nil && ctx.Err() == nil {
			log.Warn("sftp activity purge failed; retrying on the next pass", "err", err, "deleted", n)
		} else if n > 0 {
			log.Info("sftp activity past retention deleted", "events", n, "retention", retention)
		}
	})
}

// RunDigests sends the folders' upload digests as they fall due (see
// SendDigests), checking a fifteenth of the interval at a time (between a
// second and a minute), until ctx ends.
func (s *Service) RunDigests(ctx context.Context, log *slog.Logger) error {
	check := min(max(s.digestInterval()/15, time.Second), time.Minute)
	return every(ctx, check, func() {
		n, err := s.SendDigests(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("folder upload digests failed; retrying on the next pass", "err", err, "sent", n)
		} else if n > 0 {
			log.Info("folder upload digests queued", "emails", n)
		}
	})
}

// every runs pass now and then every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, pass func()) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pass()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
