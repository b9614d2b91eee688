package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/skiffhq/skiff/tenant"
)

// Event is one administrative change in an account's audit trail.
type Event struct {
	Kind       string // e.g. "user.created", "ssh_key.added", "sftp.enabled"
	TargetKind string // e.g. "User", "SshKey", "Account"
	TargetID   string
	Before     any // JSON-encodable state before the change, or nil
	After      any // JSON-encodable state after the change, or nil
}

// Record records ev in accountID's audit trail, inside the caller's transaction,
// so the record exists exactly when the change does. The actor comes from ctx.
// A kind not listed in Kinds is an internal error.
func Record(ctx context.Context, q tenant.Queryer, accountID string, ev Event) error {
	if err := checkKind(ev.Kind); err != nil {
		return err
	}
	a := tenant.ActorOf(ctx)
	before, err := jsonOrNil(ev.Before)
	if err != nil {
		return err
	}
	after, err := jsonOrNil(ev.After)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO audit_events
		(account_id, actor_kind, actor_id, actor_name, kind, target_kind, target_id, before, after)
		VALUES ($1, $2, nullif($3, '')::uuid, $4, $5, $6, nullif($7, '')::uuid, $8, $9)`,
		accountID, a.Kind, a.ID, a.Name, ev.Kind, ev.TargetKind, ev.TargetID, before, after)
	return tenant.DBError(err)
}

func jsonOrNil(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: encode state: %w", err)
	}
	return string(b), nil
}
