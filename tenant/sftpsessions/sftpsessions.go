// Package sftpsessions is the room of live SFTP sessions across nodes: who
// is connected now, from where, with what client, moving how much, and the
// request to end one session wherever it runs.
//
// Each node keeps its sessions in memory (the sftp package) and publishes a
// compact row per session through a Node (node.go), refreshed every few
// seconds; a node's heartbeat row expires when it stops, so a dead node's
// sessions drop out of every listing. Listing and ending sessions (this
// file) read and write those rows under the account's row-level security,
// or the staff scope for support staff. Every change to a row is notified
// on channel EventsChannel (migration 00120), which Events (events.go)
// fans out to the nodes' listeners: the node holding a session ends it, and
// GraphQL subscriptions hear sessions start, change and end.
package sftpsessions

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
)

// Operation is what a session is doing as of its last refresh.
type Operation string

const (
	Idle        Operation = "IDLE"        // no file open
	Uploading   Operation = "UPLOADING"   // a file open for writing
	Downloading Operation = "DOWNLOADING" // a file open for reading only
)

// Session is one live SFTP session (one logged-in SSH connection).
type Session struct {
	ID        string `db:"id"`
	AccountID string `db:"account_id"`
	UserID    string `db:"user_id"`
	NodeID    string `db:"node_id"`
	// NodeName is the name of the node holding the session (--node-name).
	NodeName string `db:"node_name"`
	// Login is the SFTP login the user logged in with (their ID or custom login).
	Login string `db:"login"`
	// ClientAddress is the client's address (the real one behind a trusted
	// PROXY load balancer).
	ClientAddress string `db:"client_address"`
	// ClientSoftware is the client's SSH identification string, cleaned of
	// anything but printable ASCII and clipped (MaxClientSoftware).
	ClientSoftware string    `db:"client_software"`
	StartedAt      time.Time `db:"started_at"`
	// BytesIn and BytesOut are the file bytes uploaded and downloaded so
	// far, as of UpdatedAt.
	BytesIn  int64 `db:"bytes_in"`
	BytesOut int64 `db:"bytes_out"`
	// Operation and OperationPath say what the session is doing: the path
	// (as the user sees it) of one of its open files; Transfers is how many
	// files it has open.
	Operation      Operation  `db:"operation"`
	OperationPath  string     `db:"operation_path"`
	Transfers      int        `db:"transfers"`
	UpdatedAt      time.Time  `db:"updated_at"`
	EndRequestedAt *time.Time `db:"end_requested_at"`
}

// Describe says what the session is doing in words: "uploading /My
// Files/x.bin", "downloading …", or "idle".
func (s *Session) Describe() string {
	switch s.Operation {
	case Uploading:
		return "uploading " + s.OperationPath
	case Downloading:
		return "downloading " + s.OperationPath
	}
	return "idle"
}

// Limits on what a client's strings may take in a session row.
const (
	MaxClientSoftware = 128  // bytes of the SSH identification string kept
	MaxOperationPath  = 1024 // bytes of the current path kept
)

// Service lists live sessions and ends them.
type Service struct {
	*tenant.Base
	// Events hears session changes on every node once its Listen runs
	// (skiff serve starts it); subscriptions subscribe to it.
	Events *Events
}

// sessionColumns are a session's columns joined with its node, listed only
// while the node's heartbeat is fresh.
const sessionColumns = `s.id, s.account_id, s.user_id, s.node_id, n.name AS node_name, s.login, s.client_address,
	s.client_software, s.started_at, s.bytes_in, s.bytes_out, s.operation, s.operation_path, s.transfers,
	s.updated_at, s.end_requested_at
	FROM sftp_sessions s JOIN sftp_nodes n ON n.id = s.node_id AND n.expires_at > now()`

// List returns the account's live sessions on every node, oldest first.
// Owners and administrators see every user's, support staff any account's;
// a user sees only their own. Anyone else gets NOT_FOUND for the account.
func (s *Service) List(ctx context.Context, accountID string) ([]*Session, error) {
	p := tenant.PrincipalFrom(ctx)
	var out []*Session
	switch {
	case p.IsStaff():
		if !tenant.IsUUID(accountID) {
			return nil, tenant.NotFound("account")
		}
		err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(q *sqlx.Tx) error {
			return q.SelectContext(ctx, &out, `SELECT `+sessionColumns+` WHERE s.account_id = $1 ORDER BY s.started_at, s.id`, accountID)
		})
		return out, tenant.DBError(err)
	case p.IsAdmin(accountID):
		err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
			return q.SelectContext(ctx, &out, `SELECT `+sessionColumns+` WHERE s.account_id = $1 ORDER BY s.started_at, s.id`, accountID)
		})
		return out, err
	case p.InAccount(accountID):
		err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
			return q.SelectContext(ctx, &out, `SELECT `+sessionColumns+` WHERE s.account_id = $1 AND s.user_id = $2 ORDER BY s.started_at, s.id`,
				accountID, p.ID)
		})
		return out, err
	case p == nil:
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	return nil, tenant.NotFound("account")
}

// ListOf is List for many accounts, by account ID (support staff's page of
// accounts): for staff one statement for all of them, for anyone else List
// for each. An account List would refuse is refused with List's error.
func (s *Service) ListOf(ctx context.Context, accountIDs []string) (map[string][]*Session, map[string]error, error) {
	out := make(map[string][]*Session, len(accountIDs))
	refused := map[string]error{}
	if !tenant.PrincipalFrom(ctx).IsStaff() {
		for _, id := range accountIDs {
			if l, err := s.List(ctx, id); err != nil {
				refused[id] = err
			} else {
				out[id] = l
			}
		}
		return out, refused, nil
	}
	var ids []string
	for _, id := range accountIDs {
		if tenant.IsUUID(id) {
			ids = append(ids, id)
			out[id] = []*Session{}
		} else {
			refused[id] = tenant.NotFound("account")
		}
	}
	var all []*Session
	err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(q *sqlx.Tx) error {
		return q.SelectContext(ctx, &all, `SELECT `+sessionColumns+` WHERE s.account_id = ANY($1::uuid[])
			ORDER BY s.account_id, s.started_at, s.id`, tenant.UUIDArray(ids))
	})
	if err != nil {
		return nil, nil, tenant.DBError(err)
	}
	for _, sess := range all {
		out[sess.AccountID] = append(out[sess.AccountID], sess)
	}
	return out, refused, nil
}

// Get returns one live session under the same rules as List: NOT_FOUND when
// it has ended, its node is gone, or the principal may not see it.
func (s *Service) Get(ctx context.Context, id string) (*Session, error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil {
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	if !tenant.IsUUID(id) || (p.Kind != tenant.KindUser && !p.IsStaff()) {
		return nil, tenant.NotFound("SFTP session")
	}
	var sess Session
	var err error
	if p.IsStaff() {
		err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(q *sqlx.Tx) error {
			return q.GetContext(ctx, &sess, `SELECT `+sessionColumns+` WHERE s.id = $1`, id)
		})
	} else {
		err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
			return q.GetContext(ctx, &sess, `SELECT `+sessionColumns+` WHERE s.id = $1 AND s.account_id = $2`, id, p.AccountID)
		})
	}
	if err = tenant.NotFoundAs(tenant.DBError(err), "SFTP session"); err != nil {
		return nil, err
	}
	if p.Kind == tenant.KindUser && !p.IsAdmin(sess.AccountID) && sess.UserID != p.ID {
		return nil, tenant.NotFound("SFTP session")
	}
	return &sess, nil
}

// Disconnect asks the node holding the session to end it, which it does
// within about a second (it hears of the request by notification), and
// records who asked in the account's audit trail. Owners and administrators
// end their account's sessions, support staff any account's; only an owner
// ends an owner's (ErrOwnersOnly). A user who may only see the session gets
// FORBIDDEN; a session ended already, or not visible, is NOT_FOUND. It
// returns the session as it was when the end was asked for.
func (s *Service) Disconnect(ctx context.Context, id string) (*Session, error) {
	p := tenant.PrincipalFrom(ctx)
	sess, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	request := func(q tenant.Queryer) error {
		res, err := q.ExecContext(ctx, `UPDATE sftp_sessions SET end_requested_at = coalesce(end_requested_at, now())
			WHERE id = $1 AND account_id = $2`, sess.ID, sess.AccountID)
		if err != nil {
			return tenant.DBError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return tenant.NotFound("SFTP session")
		}
		return audit.Record(ctx, q, sess.AccountID, audit.Event{
			Kind: "sftp_session.disconnected", TargetKind: "User", TargetID: sess.UserID,
			After: map[string]any{"sessionId": sess.ID, "login": sess.Login, "clientAddress": sess.ClientAddress,
				"node": sess.NodeName, "startedAt": sess.StartedAt},
		})
	}
	if p.IsStaff() {
		err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return request(tx) })
		return tenant.Result(sess, tenant.DBError(err))
	}
	if !p.IsAdmin(sess.AccountID) {
		return nil, tenant.Errorf(tenant.EForbidden, "only owners and administrators can end SFTP sessions")
	}
	err = s.InAccount(ctx, sess.AccountID, func(q tenant.Queryer) error {
		u, err := tenant.GetUser(ctx, q, sess.UserID, false)
		if err != nil {
			return err
		}
		if !p.MayChange(u) {
			return tenant.ErrOwnersOnly
		}
		return request(q)
	})
	return tenant.Result(sess, err)
}
