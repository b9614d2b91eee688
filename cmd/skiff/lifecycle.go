package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/sftp"
)

// lifecycle is serve's shutdown state. On SIGTERM (or SIGINT) it starts
// draining: /readyz answers 503 at once, new API requests are answered 503
// with a GraphQL error, the SFTP server refuses new logins and closes idle
// sessions, and the requests and transfers under way get the grace period.
// HTTP and SFTP drain side by side; the process ends when both have.
type lifecycle struct {
	draining atomic.Bool
	inFlight atomic.Int64 // API requests being served
}

// shuttingDownBody is the answer to an API request made while the server
// drains, shaped like any GraphQL error so clients show its message.
const shuttingDownBody = `{"errors":[{"message":"this Skiff server is shutting down; retry the request (it will reach another server)","extensions":{"code":"SHUTTING_DOWN"}}]}` + "\n"

// gate wraps the HTTP API: while draining, /readyz fails and every request
// but /healthz is refused; otherwise it counts the requests in flight.
func (l *lifecycle) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if l.draining.Load() && req.URL.Path != "/healthz" {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			if req.URL.Path == "/readyz" {
				http.Error(w, "shutting down\n", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(shuttingDownBody))
			return
		}
		l.inFlight.Add(1)
		defer l.inFlight.Add(-1)
		next.ServeHTTP(w, req)
	})
}

// waitRequests returns once no API request is in flight, or when ctx ends.
func (l *lifecycle) waitRequests(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for l.inFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// drain shuts the API and the SFTP server down side by side within grace,
// then stops the background loops. The HTTP listener stays open (answering
// 503) until the SFTP transfers are done too, so a load balancer polling
// /readyz sees the node leave rather than a refused connection.
func (l *lifecycle) drain(log *slog.Logger, grace time.Duration, api *httpServer, sftpSrv *sftp.Server, bg *background) {
	l.draining.Store(true)
	started := time.Now()
	log.Info("shutting down: draining API requests and SFTP transfers", "grace", grace)
	// Subscriptions are closed at once: their clients reconnect, to
	// another node, rather than hold the drain for its whole grace.
	api.closeWebSockets()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := sftpSrv.Shutdown(ctx); err != nil {
			log.Warn("SFTP transfers cut at the end of the grace period", "grace", grace)
		}
	})
	wg.Go(func() {
		if err := l.waitRequests(ctx); err != nil {
			log.Warn("API requests still running at the end of the grace period", "requests", l.inFlight.Load())
		}
	})
	wg.Wait()
	if err := api.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = api.srv.Close()
	}
	bg.stop(ctx)
	log.Info("shut down", "duration", time.Since(started))
}

// ignoreHangups logs and ignores SIGHUP until ctx ends. Skiff reads its
// configuration (flags and environment) only at start, and what lives in
// the database (host keys, dedicated IPs, permissions, allowlists) already
// reaches every node without a signal: there is nothing to reload, and a
// hang-up (a closed terminal, a log rotator's habit) must not stop it.
func ignoreHangups(ctx context.Context, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP ignored: Skiff reads its configuration only at start; restart it (SIGTERM drains first) to change settings")
			}
		}
	}()
}
