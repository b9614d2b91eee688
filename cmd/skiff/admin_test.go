package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
)

func TestMain(m *testing.M) {
	tenant.UseCheapPasswordHashes() // what the tests check does not depend on the cost
	pgtest.Main(m)
}

// The admin commands bootstrap what the API cannot: the first staff login and
// accounts; bad input is a one-line message, not a stack trace.
func TestAdminCommands(t *testing.T) {
	ctx := context.Background()
	db := DatabaseFlags{DatabaseURL: pgtest.NewDB(t)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	staff := &CreateStaffCmd{DatabaseFlags: db, Email: "support@example.com", Name: "Support", Password: "support password"}
	if err := staff.Run(ctx, log); err != nil {
		t.Fatal(err)
	}
	acct := &CreateAccountCmd{DatabaseFlags: db, Name: "Acme", OwnerEmail: "boss@acme.example", OwnerName: "Boss", OwnerPassword: "boss password!"}
	if err := acct.Run(ctx, log); err != nil {
		t.Fatal(err)
	}
	// Both can log in.
	d, err := tenant.Open(ctx, db.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	svc := domain.New(d)
	for email, pw := range map[string]string{"support@example.com": "support password", "boss@acme.example": "boss password!"} {
		if _, err := svc.People.Login(ctx, email, pw, netip.Addr{}); err != nil {
			t.Errorf("login %s: %v", email, err)
		}
	}
	// Adding the staff login left a trace: who (the system, through the
	// CLI), what and when.
	var events []struct {
		ActorKind string `db:"actor_kind"`
		Kind      string `db:"kind"`
		Email     string `db:"email"`
	}
	if err := d.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &events, `SELECT actor_kind, kind, after->>'email' AS email FROM staff_audit_events`)
	}); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].ActorKind != "SYSTEM" || events[0].Kind != "staff.created" || events[0].Email != "support@example.com" {
		t.Errorf("staff audit trail: %+v", events)
	}
	// Mistakes say what is wrong.
	again := &CreateStaffCmd{DatabaseFlags: db, Email: "support@example.com", Name: "Support", Password: "support password"}
	if err := again.Run(ctx, log); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("duplicate staff: %v", err)
	}
	short := &CreateAccountCmd{DatabaseFlags: db, Name: "Beta", OwnerEmail: "o@beta.example", OwnerName: "O", OwnerPassword: "short"}
	if err := short.Run(ctx, log); err == nil || !strings.Contains(err.Error(), "at least 10 characters") {
		t.Errorf("short password: %v", err)
	}
	bad := &CreateAccountCmd{DatabaseFlags: db, Name: "Beta", OwnerEmail: "not-an-email", OwnerName: "O", OwnerPassword: "long enough password"}
	if err := bad.Run(ctx, log); err == nil || !strings.Contains(err.Error(), "ownerEmail") {
		t.Errorf("bad email: %v", err)
	}
}
