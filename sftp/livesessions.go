package sftp

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/sftpsessions"
)

// Live sessions (issue #15 item 3): the server knows its logged-in
// connections; a SessionPublisher writes them, every few seconds and at
// each login and logout, to the database (sftpsessions.Node), where any
// node lists them, and ends those whose end an owner, administrator or
// staff member asked for.

// DefaultPublishEvery is how often a SessionPublisher refreshes its node's
// heartbeat and its sessions' bytes and operations by default.
const DefaultPublishEvery = 2 * time.Second

// reasonEndRequested is logged for connections ended on request.
const reasonEndRequested = "ended on request (disconnectSftpSession)"

// Traffic is implemented by a Session that counts the file data it moved
// (vfs.Session does).
type Traffic interface {
	Traffic() (in, out int64)
}

// liveInfo is what a logged-in connection shows in the list of live
// sessions besides its login. It is set before the connection is filed as
// authenticated and never changes after.
type liveInfo struct {
	id      string // the session's public ID, a UUID
	started time.Time
	remote  netip.Addr
	client  string // the client's SSH identification string, cleaned
}

// newLiveInfo describes a connection that has just logged in.
func newLiveInfo(started time.Time, remote netip.Addr, clientVersion []byte) liveInfo {
	return liveInfo{id: uuid.NewString(), started: started, remote: remote, client: cleanClientSoftware(clientVersion)}
}

// cleanClientSoftware keeps the printable ASCII of a client's SSH
// identification string (RFC 4253 allows nothing else, but a client may
// send anything) and clips it to sftpsessions.MaxClientSoftware bytes.
func cleanClientSoftware(v []byte) string {
	var b strings.Builder
	for _, c := range v {
		if b.Len() == sftpsessions.MaxClientSoftware {
			break
		}
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// liveChanged wakes the publisher after a login or a logout.
func (s *Server) liveChanged() {
	select {
	case s.liveWake <- struct{}{}:
	default:
	}
}

// LiveSessions returns the server's logged-in connections as session rows
// (without node): who, from where, with what, how much moved and what they
// are doing now.
func (s *Server) LiveSessions() []*sftpsessions.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*sftpsessions.Session, 0, len(s.conns))
	for c := range s.conns {
		if !c.authenticated || c.live.id == "" {
			continue
		}
		row := &sftpsessions.Session{
			ID: c.live.id, AccountID: c.login.AccountID, UserID: c.login.UserID, Login: cmp.Or(c.login.LoginUsed, c.login.Login),
			ClientAddress: c.live.remote.String(), ClientSoftware: c.live.client, StartedAt: c.live.started,
			Operation: sftpsessions.Idle,
		}
		if t, ok := c.sess.(Traffic); ok {
			row.BytesIn, row.BytesOut = t.Traffic()
		}
		if tl, ok := c.sess.(TransferLister); ok {
			describeOperation(row, tl.Transfers())
		}
		out = append(out, row)
	}
	return out
}

// describeOperation sets what the session is doing from its open files:
// uploading when one is open for writing (the first such), downloading
// otherwise, idle with none.
func describeOperation(row *sftpsessions.Session, open []vfs.Transfer) {
	row.Transfers = len(open)
	for _, t := range open {
		if t.Upload {
			row.Operation, row.OperationPath = sftpsessions.Uploading, t.Path
			break
		}
		if row.Operation == sftpsessions.Idle {
			row.Operation, row.OperationPath = sftpsessions.Downloading, t.Path
		}
	}
	row.OperationPath = clipPath(row.OperationPath)
}

// clipPath shortens a path to sftpsessions.MaxOperationPath bytes, on a
// rune boundary.
func clipPath(p string) string {
	if len(p) <= sftpsessions.MaxOperationPath {
		return p
	}
	return strings.ToValidUTF8(p[:sftpsessions.MaxOperationPath], "")
}

// EndSession ends the logged-in connection whose live session ID is id, at
// once. It reports whether this server held it.
func (s *Server) EndSession(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.authenticated && c.live.id == id {
			if c.endReason == "" {
				c.endReason = reasonEndRequested
			}
			c.close()
			return true
		}
	}
	return false
}

// holds reports whether the server has the live session id.
func (s *Server) holds(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.authenticated && c.live.id == id {
			return true
		}
	}
	return false
}

// SessionPublisher keeps a node's live sessions in the database and ends
// the ones whose end was asked for.
type SessionPublisher struct {
	Server *Server
	Node   *sftpsessions.Node
	// Events delivers end requests within moments; without it (or while its
	// connection is down) they are seen at the next refresh.
	Events *sftpsessions.Events
	// Every is the refresh interval (DefaultPublishEvery when zero).
	Every time.Duration
	Log   *slog.Logger
}

// Run publishes until ctx ends, then removes the node's sessions from the
// database (Node.Leave). It returns nil.
func (p *SessionPublisher) Run(ctx context.Context) error {
	every := p.Every
	if every <= 0 {
		every = DefaultPublishEvery
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	if p.Events != nil {
		cancel := p.Events.Subscribe(func(ev sftpsessions.Event) {
			if ev.Kind == sftpsessions.EndRequested && p.Server.holds(ev.SessionID) {
				go p.endIfRequested(ctx, ev.SessionID, log)
			}
		}, nil)
		defer cancel()
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	published := map[string]sftpsessions.Session{}
	failing := false
	for {
		now := p.Server.LiveSessions()
		changes, next := diffSessions(published, now)
		endRequested, err := p.Node.Publish(ctx, changes)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				log.Warn("sftp sessions: publishing the live sessions failed; retrying at every refresh", "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				log.Info("sftp sessions: publishing the live sessions again")
			}
			failing, published = false, next
			for _, id := range endRequested {
				p.Server.EndSession(id)
			}
		}
		select {
		case <-ctx.Done():
			leave, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := p.Node.Leave(leave); err != nil {
				log.Warn("sftp sessions: removing this node's sessions failed; they drop out when its heartbeat expires", "err", err)
			}
			return nil
		case <-tick.C:
		case <-p.Server.liveWake:
		}
	}
}

// endIfRequested ends the session once the database confirms its end was
// asked for: a notification only says where to look.
func (p *SessionPublisher) endIfRequested(ctx context.Context, id string, log *slog.Logger) {
	asked, err := p.Node.EndRequested(ctx, id)
	if err != nil {
		log.Warn("sftp sessions: checking an end request failed; the next refresh checks again", "session_id", id, "err", err)
		return
	}
	if asked {
		p.Server.EndSession(id)
	}
}

// diffSessions compares the sessions last published with those live now:
// the new, the changed (bytes or operation) and the ended. next is what
// will have been published once the changes are.
func diffSessions(published map[string]sftpsessions.Session, now []*sftpsessions.Session) (sftpsessions.Changes, map[string]sftpsessions.Session) {
	var c sftpsessions.Changes
	next := make(map[string]sftpsessions.Session, len(now))
	for _, s := range now {
		next[s.ID] = *s
		old, ok := published[s.ID]
		switch {
		case !ok:
			c.Started = append(c.Started, s)
		case old.BytesIn != s.BytesIn || old.BytesOut != s.BytesOut || old.Operation != s.Operation ||
			old.OperationPath != s.OperationPath || old.Transfers != s.Transfers:
			c.Updated = append(c.Updated, s)
		}
	}
	for id := range published {
		if _, ok := next[id]; !ok {
			c.Ended = append(c.Ended, id)
		}
	}
	return c, next
}
