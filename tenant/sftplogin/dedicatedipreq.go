package sftplogin

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
)

// maxDedicatedIPRequestText bounds a request's message and a decline's
// reason; the columns check it too.
const maxDedicatedIPRequestText = 2000

// DedicatedIPRequestState is where an owner's dedicated IP request stands.
type DedicatedIPRequestState string

const (
	RequestOpen        DedicatedIPRequestState = "OPEN"        // waiting for support
	RequestProvisioned DedicatedIPRequestState = "PROVISIONED" // support provisioned a dedicated IP
	RequestDeclined    DedicatedIPRequestState = "DECLINED"    // support declined it, with a reason
)

// DedicatedIPRequest is an account owner's request for a dedicated IP,
// queued for support.
type DedicatedIPRequest struct {
	ID               string                  `db:"id"`
	AccountID        string                  `db:"account_id"`
	AccountName      string                  `db:"account_name"`
	RequestedBy      string                  `db:"requested_by"` // user ID
	RequestedByName  string                  `db:"requested_by_name"`
	RequestedByEmail string                  `db:"requested_by_email"`
	Message          string                  `db:"message"`
	CreatedAt        time.Time               `db:"created_at"`
	State            DedicatedIPRequestState `db:"state"`
	HandledAt        *time.Time              `db:"handled_at"`
	Address          *string                 `db:"address"`        // PROVISIONED: the address provisioned
	DeclineReason    *string                 `db:"decline_reason"` // DECLINED: as the requester was told
	requesterDeleted bool
}

// dedicatedIPRequestSelect reads DedicatedIPRequests (r) with their account
// (a) and requester (u).
const dedicatedIPRequestSelect = dedicatedIPRequestColumns + " " + dedicatedIPRequestFrom

const dedicatedIPRequestColumns = `SELECT r.id, r.account_id, a.name AS account_name, r.requested_by,
		u.name AS requested_by_name, u.email AS requested_by_email, r.message, r.created_at, r.state,
		r.handled_at, host(r.address) AS address, r.decline_reason`

const dedicatedIPRequestFrom = `FROM dedicated_ip_requests r
	JOIN accounts a ON a.id = r.account_id
	JOIN users u ON u.account_id = r.account_id AND u.id = r.requested_by`

// requestText trims and checks a request's message or a decline's reason.
func requestText(field, text string, required bool) (string, error) {
	text = strings.TrimSpace(text)
	switch {
	case !utf8.ValidString(text):
		return "", tenant.Invalid(field, "%s is not valid text", field)
	case required && text == "":
		return "", tenant.Invalid(field, "give a %s", field)
	case utf8.RuneCountInString(text) > maxDedicatedIPRequestText:
		return "", tenant.Invalid(field, "%s must be at most %d characters", field, maxDedicatedIPRequestText)
	}
	return text, nil
}

// RequestDedicatedIP asks support for a dedicated IP for the principal's
// account, with an optional message of up to 2000 characters. Account owners
// only (FORBIDDEN otherwise). User errors (EConflict): the account already
// has a dedicated IP, or already has an open request.
func (s *Service) RequestDedicatedIP(ctx context.Context, message string) (*DedicatedIPRequest, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != tenant.RoleOwner {
		return nil, tenant.Errorf(tenant.EForbidden, "only the account owner can request a dedicated IP")
	}
	if message, err = requestText("message", message, false); err != nil {
		return nil, err
	}
	var r DedicatedIPRequest
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		a, err := tenant.LockAccount(ctx, q, p.AccountID)
		if err != nil {
			return err
		}
		ip, err := ActiveDedicatedIPTx(ctx, q, a.ID)
		if err != nil {
			return err
		}
		if ip != nil {
			return tenant.Errorf(tenant.EConflict, "this account already has the dedicated IP %s", ip.Address)
		}
		var open []time.Time
		if err := q.SelectContext(ctx, &open, `SELECT created_at FROM dedicated_ip_requests
			WHERE account_id = $1 AND state = 'OPEN'`, a.ID); err != nil {
			return tenant.DBError(err)
		}
		if len(open) > 0 {
			return tenant.Errorf(tenant.EConflict, "this account already has an open dedicated IP request, sent on %s; support will answer it by email",
				open[0].UTC().Format("2 January 2006"))
		}
		if err := q.GetContext(ctx, &r, `INSERT INTO dedicated_ip_requests (account_id, requested_by, message, created_at)
			VALUES ($1, $2, $3, $4) RETURNING id, account_id, requested_by, message, created_at, state`,
			a.ID, p.ID, message, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		r.AccountName, r.RequestedByName, r.RequestedByEmail = a.Name, p.Name, p.Email
		return audit.Record(ctx, q, a.ID, audit.Event{Kind: "dedicated_ip.requested", TargetKind: "DedicatedIpRequest", TargetID: r.ID,
			After: map[string]any{"message": message, "state": r.State}})
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// DedicatedIPRequests lists dedicated IP requests across accounts, oldest
// first (a queue), only the open ones when onlyOpen. Support staff only.
func (s *Service) DedicatedIPRequests(ctx context.Context, onlyOpen bool, page tenant.Page) (*tenant.Connection[*DedicatedIPRequest], error) {
	return tenant.StaffQueue(ctx, s.DB, dedicatedIPRequestQueue, page, tenant.ListQuery{
		Select: dedicatedIPRequestColumns,
		From:   dedicatedIPRequestFrom + ` WHERE (NOT $1 OR r.state = 'OPEN')`,
		Args:   []any{onlyOpen},
	})
}

var dedicatedIPRequestQueue = tenant.QueueSorts("dedicatedIpRequests",
	func(r *DedicatedIPRequest) (time.Time, string) { return r.CreatedAt, r.ID })

// DedicatedIPRequest returns one request by ID, for support staff only; to
// anyone else it does not exist.
func (s *Service) DedicatedIPRequest(ctx context.Context, id string) (*DedicatedIPRequest, error) {
	return tenant.StaffQueueItem[DedicatedIPRequest](ctx, s.DB, dedicatedIPRequestSelect, id, "dedicated IP request")
}

// DeclineDedicatedIPRequest declines an open request with a reason (1 to
// 2000 characters), which the requester is emailed. Support staff only. An
// unknown request is not found; one already provisioned or declined is an
// EConflict user error.
func (s *Service) DeclineDedicatedIPRequest(ctx context.Context, id, reason string) (*DedicatedIPRequest, error) {
	p, err := tenant.RequireStaff(ctx)
	if err != nil {
		return nil, err
	}
	if !tenant.IsUUID(id) {
		return nil, tenant.NotFound("dedicated IP request")
	}
	if reason, err = requestText("reason", reason, true); err != nil {
		return nil, err
	}
	var r *DedicatedIPRequest
	err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		var accountID string
		if err := tx.GetContext(ctx, &accountID, `SELECT account_id FROM dedicated_ip_requests WHERE id = $1`, id); err != nil {
			return tenant.NotFoundAs(tenant.DBError(err), "dedicated IP request")
		}
		// The account's lock orders this with a provisioning of the account.
		if _, err := tenant.LockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		var err error
		r, err = s.closeRequest(ctx, tx, p, `r.id = $1`, id, RequestDeclined, nil, &reason)
		if err != nil {
			return err
		}
		if r == nil {
			var st DedicatedIPRequestState
			if err := tx.GetContext(ctx, &st, `SELECT state FROM dedicated_ip_requests WHERE id = $1`, id); err != nil {
				return tenant.DBError(err)
			}
			return tenant.Errorf(tenant.EConflict, "this dedicated IP request is already %s", strings.ToLower(string(st)))
		}
		if r.requesterDeleted {
			return nil
		}
		return outbox.Enqueue(ctx, tx, r.AccountID, outbox.Email{To: r.RequestedByEmail, Data: outbox.DedicatedIPDeclinedData{
			UserName: r.RequestedByName, AccountName: r.AccountName, RequestedAt: r.CreatedAt, Reason: reason}})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// provisionedRequestTx closes the account's open request, if any, as
// provisioned with ip, and emails its requester, in the provisioning's
// staff-scope transaction (the account locked).
func (s *Service) provisionedRequestTx(ctx context.Context, tx *sqlx.Tx, ip *DedicatedIP) error {
	p := tenant.PrincipalFrom(ctx)
	addr := ip.Address.String()
	r, err := s.closeRequest(ctx, tx, p, `r.account_id = $1`, ip.AccountID, RequestProvisioned, &addr, nil)
	if err != nil || r == nil || r.requesterDeleted {
		return err
	}
	fps, err := HostKeyFingerprintsTx(ctx, tx, ip.AccountID)
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx, r.AccountID, outbox.Email{To: r.RequestedByEmail, Data: outbox.DedicatedIPProvisionedData{
		UserName: r.RequestedByName, AccountName: r.AccountName, RequestedAt: r.CreatedAt,
		Address: addr, ProvisionedAt: ip.ProvisionedAt, HostKeys: fps}})
}

// closeRequest moves the open request matching where (with its one argument
// arg) to state, audits it, and returns it; nil when no open request matches.
func (s *Service) closeRequest(ctx context.Context, tx *sqlx.Tx, p *tenant.Principal, where string, arg any,
	state DedicatedIPRequestState, address, reason *string) (*DedicatedIPRequest, error) {
	var rows []*DedicatedIPRequest
	if err := tx.SelectContext(ctx, &rows, dedicatedIPRequestSelect+` WHERE `+where+` AND r.state = 'OPEN' FOR UPDATE OF r`, arg); err != nil {
		return nil, tenant.DBError(err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	r := rows[0]
	var staffID string
	if p != nil && p.IsStaff() {
		staffID = p.ID
	}
	if err := tx.GetContext(ctx, r, `UPDATE dedicated_ip_requests r SET state = $2, handled_at = $3,
			handled_by = nullif($4, '')::uuid, address = $5::inet, decline_reason = $6
		WHERE r.id = $1 RETURNING r.state, r.handled_at, host(r.address) AS address, r.decline_reason`,
		r.ID, state, s.Time(), staffID, address, reason); err != nil {
		return nil, tenant.DBError(err)
	}
	var deleted bool
	if err := tx.GetContext(ctx, &deleted, `SELECT deleted_at IS NOT NULL FROM users WHERE account_id = $1 AND id = $2`,
		r.AccountID, r.RequestedBy); err != nil {
		return nil, tenant.DBError(err)
	}
	r.requesterDeleted = deleted
	after := map[string]any{"state": r.State, "requestedBy": r.RequestedByEmail, "emailed": !deleted}
	if address != nil {
		after["address"] = *address
	}
	if reason != nil {
		after["reason"] = *reason
	}
	return r, audit.Record(ctx, tx, r.AccountID, audit.Event{Kind: "dedicated_ip.request_" + strings.ToLower(string(state)),
		TargetKind: "DedicatedIpRequest", TargetID: r.ID, Before: map[string]any{"state": RequestOpen}, After: after})
}
