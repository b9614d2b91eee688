package audit

import (
	"context"
	"fmt"
	"slices"

	"github.com/skiffhq/skiff/tenant"
)

// Kinds of the events the product records. Most call sites write their kind
// as a literal; the constants here are for the newer ones. Every kind
// recorded must be listed in Kinds: Record refuses any other, and the
// GraphQL enum AuditEventKind has one value per kind (a test in package
// graph checks both ways, and one in this package that every kind literal
// in the domain's code is listed).
const (
	APISessionRevoked        = "api_session.revoked"
	APISessionsRevokedOthers = "api_session.others_revoked"
	APISessionRefreshReused  = "api_session.refresh_reused"
)

// Kinds lists every kind of event in an account's audit trail.
var Kinds = []string{
	"account.created",
	"account.ip_allowlist_changed",
	"account.require_totp_changed",
	"account.storage_quota_changed",
	APISessionRevoked,
	APISessionsRevokedOthers,
	APISessionRefreshReused,
	"contact.converted",
	"contact.created",
	"contact.deleted",
	"contact.updated",
	"dedicated_ip.provisioned",
	"dedicated_ip.released",
	"dedicated_ip.request_declined",
	"dedicated_ip.request_provisioned",
	"dedicated_ip.requested",
	"files.purged",
	"group.created",
	"group.deleted",
	"group.updated",
	"project_folder.created",
	"project_folder.deleted",
	"project_folder.renamed",
	"project_folder.shared",
	"project_folder.unshared",
	"sftp.custom_login_changed",
	"sftp.disabled",
	"sftp.enabled",
	"sftp_module.activated",
	"sftp_module.licences_changed",
	"sftp_module.requested",
	"sftp_module.suspended",
	"sftp_module.trial_started",
	"sftp_session.disconnected",
	"ssh_key.added",
	"ssh_key.deleted",
	"ssh_key.renamed",
	"ssh_key.updated",
	"user.created",
	"user.deleted",
	"user.email_changed",
	"user.email_clash_resolved", // written by migration 00040 only
	"user.group_changed",
	"user.invitation_accepted",
	"user.invited",
	"user.ip_allowlist_changed",
	"user.password_changed",
	"user.password_reset",
	"user.password_reset_requested",
	"user.restored",
	"user.storage_quota_changed",
	"user.totp_disabled",
	"user.totp_enabled",
	"user.updated",
}

// KnownKind reports whether kind is listed in Kinds.
func KnownKind(kind string) bool { return slices.Contains(Kinds, kind) }

func checkKind(kind string) error {
	if KnownKind(kind) {
		return nil
	}
	return &tenant.Error{Code: tenant.EInternal, Message: "internal error",
		Err: fmt.Errorf("audit: event kind %q is not listed in audit.Kinds (add it there and to the GraphQL enum AuditEventKind)", kind)}
}

// RecordStaff records ev in the staff audit trail (staff_audit_events, read
// only by staff), inside the caller's transaction, which must be in the
// staff scope. That trail keeps one state per event: ev.After, or ev.Before
// when there is no after.
func RecordStaff(ctx context.Context, q tenant.Queryer, ev Event) error {
	a := tenant.ActorOf(ctx)
	state := ev.After
	if state == nil {
		state = ev.Before
	}
	after, err := jsonOrNil(state)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO staff_audit_events (actor_kind, actor_id, actor_name, kind, target_id, after)
		VALUES ($1, nullif($2, '')::uuid, $3, $4, nullif($5, '')::uuid, $6)`, a.Kind, a.ID, a.Name, ev.Kind, ev.TargetID, after)
	return tenant.DBError(err)
}
