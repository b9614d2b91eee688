package sftpsessions

import (
	"context"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/skiffhq/skiff/tenant"
)

// Node publishes one node's live sessions: its heartbeat, and a row per
// session. It writes on the node's own cross-tenant path
// (tenant.ScopeSFTPNode), which sees the session rows of every account but
// nothing else of theirs.
type Node struct {
	DB   *tenant.DB
	ID   string // a UUID, new at every start
	Name string // shown with each session (--node-name)
	// TTL is how long the node's sessions stay listed after its last
	// heartbeat; give several refresh intervals.
	TTL time.Duration
}

// Changes is what changed on the node since its last publication.
type Changes struct {
	Started []*Session // new sessions (also sent again after a failed publication)
	Updated []*Session // sessions whose bytes or operation changed
	Ended   []string   // IDs of sessions that ended
}

// Publish writes the node's heartbeat and changes in one transaction,
// deletes the nodes whose heartbeat expired (and by cascade their
// sessions), and returns the IDs of this node's sessions whose end was asked
// for: the fallback for a missed notification.
func (n *Node) Publish(ctx context.Context, c Changes) (endRequested []string, err error) {
	if n.TTL <= 0 {
		return nil, errors.New("sftpsessions: Node.TTL must be above zero")
	}
	err = n.DB.CrossTenant(ctx, tenant.ScopeSFTPNode, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sftp_nodes (id, name, expires_at)
			VALUES ($1, $2, now() + make_interval(secs => $3))
			ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at`, n.ID, n.Name, n.TTL.Seconds()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sftp_nodes WHERE expires_at < now()`); err != nil {
			return err
		}
		if len(c.Ended) > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sftp_sessions WHERE node_id = $1 AND id = ANY($2::uuid[])`,
				n.ID, pq.Array(c.Ended)); err != nil {
				return err
			}
		}
		for _, s := range c.Started {
			if _, err := tx.ExecContext(ctx, `INSERT INTO sftp_sessions (id, account_id, user_id, node_id, login,
				client_address, client_software, started_at, bytes_in, bytes_out, operation, operation_path, transfers)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
				ON CONFLICT (id) DO NOTHING`,
				s.ID, s.AccountID, s.UserID, n.ID, s.Login, s.ClientAddress, s.ClientSoftware, s.StartedAt,
				s.BytesIn, s.BytesOut, s.Operation, s.OperationPath, s.Transfers); err != nil {
				return err
			}
		}
		if len(c.Updated) > 0 {
			ids, in, out, ops, paths, transfers := make([]string, len(c.Updated)), make([]int64, len(c.Updated)),
				make([]int64, len(c.Updated)), make([]string, len(c.Updated)), make([]string, len(c.Updated)), make([]int64, len(c.Updated))
			for i, s := range c.Updated {
				ids[i], in[i], out[i], ops[i], paths[i], transfers[i] = s.ID, s.BytesIn, s.BytesOut, string(s.Operation), s.OperationPath, int64(s.Transfers)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE sftp_sessions s SET bytes_in = u.bytes_in, bytes_out = u.bytes_out,
				operation = u.operation, operation_path = u.operation_path, transfers = u.transfers, updated_at = now()
				FROM unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::int[])
					AS u (id, bytes_in, bytes_out, operation, operation_path, transfers)
				WHERE s.node_id = $1 AND s.id = u.id`,
				n.ID, pq.Array(ids), pq.Array(in), pq.Array(out), pq.Array(ops), pq.Array(paths), pq.Array(transfers)); err != nil {
				return err
			}
		}
		return tx.SelectContext(ctx, &endRequested, `SELECT id FROM sftp_sessions
			WHERE node_id = $1 AND end_requested_at IS NOT NULL`, n.ID)
	})
	return endRequested, tenant.DBError(err)
}

// EndRequested reports whether the end of the node's session id was asked
// for: a node reads it back before acting on a notification.
func (n *Node) EndRequested(ctx context.Context, id string) (bool, error) {
	var asked bool
	err := n.DB.CrossTenant(ctx, tenant.ScopeSFTPNode, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &asked, `SELECT EXISTS (SELECT FROM sftp_sessions
			WHERE id = $1 AND node_id = $2 AND end_requested_at IS NOT NULL)`, id, n.ID)
	})
	return asked, tenant.DBError(err)
}

// Leave deletes the node's heartbeat and, by cascade, its session rows: a
// node that shuts down cleanly does not wait for its TTL to drop out.
func (n *Node) Leave(ctx context.Context) error {
	err := n.DB.CrossTenant(ctx, tenant.ScopeSFTPNode, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sftp_nodes WHERE id = $1`, n.ID)
		return err
	})
	return tenant.DBError(err)
}
