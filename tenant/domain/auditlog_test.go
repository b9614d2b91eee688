package domain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
)

func TestAuditEvents(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(5)
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	admin := f.newUser("ada@acme.test", tenant.RoleAdmin)
	f.enable(u)
	if _, err := f.svc.SFTP.SetSFTPAccess(f.as(admin), u.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SFTP.RequestSFTPModule(f.as(admin), "more please"); err != nil {
		t.Fatal(err)
	}
	_, otherOwner := f.newAccount("Globex", "gina@globex.test")

	all, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{}, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) < 7 || all.HasNext || all.HasPrevious {
		t.Fatalf("whole trail: %d events, next %v previous %v", len(all.Items), all.HasNext, all.HasPrevious)
	}
	for i, e := range all.Items {
		if e.AccountID != f.account.ID {
			t.Fatalf("event %s of account %s in Acme's trail", e.Kind, e.AccountID)
		}
		if i > 0 && e.At.After(all.Items[i-1].At) {
			t.Fatalf("event %d (%s) is newer than the one before it", i, e.Kind)
		}
	}
	if all.Items[0].Kind != "sftp_module.requested" || all.Items[0].ActorName != admin.Name {
		t.Fatalf("newest event = %s by %s", all.Items[0].Kind, all.Items[0].ActorName)
	}

	// Pages follow each other without gaps or repeats.
	var paged []string
	page := tenant.Page{First: 3}
	for {
		conn, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{}, tenant.Order{}, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range conn.Items {
			paged = append(paged, e.ID)
		}
		if !conn.HasNext {
			break
		}
		page.After = conn.Cursors[len(conn.Cursors)-1]
	}
	var ids []string
	for _, e := range all.Items {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(paged, ids) {
		t.Fatalf("paging gave %d events, the whole list %d", len(paged), len(ids))
	}

	// By kind: exact kinds and families.
	sftp, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{Kinds: []string{"sftp.enabled", "sftp.disabled"}}, tenant.Order{}, tenant.Page{})
	// Three: the owner's enabling with the module's first activation, then u's two.
	if err != nil || len(sftp.Items) != 3 || sftp.Items[0].Kind != "sftp.disabled" ||
		sftp.Items[2].TargetID == nil || *sftp.Items[2].TargetID != f.owner.ID {
		t.Fatalf("SFTP access events = %+v, %v", sftp, err)
	}
	module, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{Kinds: []string{"sftp_module.*"}}, tenant.Order{}, tenant.Page{})
	if err != nil || len(module.Items) != 2 {
		t.Fatalf("module events: %d, %v; want activated and requested", len(module.Items), err)
	}

	// By user: what they did and what was done to them.
	byAdmin, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{UserID: admin.ID}, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range byAdmin.Items {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Equal(kinds, []string{"sftp_module.requested", "sftp.disabled", "user.invited", "user.created"}) {
		t.Fatalf("events of the admin = %v", kinds)
	}
	if none, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{UserID: uuid.NewString()}, tenant.Order{}, tenant.Page{}); err != nil || len(none.Items) != 0 {
		t.Fatalf("events of an unknown user = %+v, %v", none, err)
	}

	// By time: Since and Until split the trail.
	cut := all.Items[len(all.Items)/2].At
	since, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{Since: &cut}, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	until, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{Until: &cut}, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(since.Items)+len(until.Items) != len(all.Items) || len(since.Items) == 0 || len(until.Items) == 0 {
		t.Fatalf("since %d + until %d != %d events", len(since.Items), len(until.Items), len(all.Items))
	}
	for _, e := range since.Items {
		if e.At.Before(cut) {
			t.Fatalf("event at %v listed since %v", e.At, cut)
		}
	}
	later := cut.Add(-time.Second)
	_, err = f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{Since: &cut, Until: &later}, tenant.Order{}, tenant.Page{})
	f.wantCode(err, tenant.EInvalid, "until before since")
	_, err = f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{}, tenant.Order{}, tenant.Page{After: "bogus"})
	f.wantCode(err, tenant.EInvalid, "bad cursor")

	// Who may read it.
	_, err = f.svc.Audit.Events(f.as(u), f.account.ID, audit.Filter{}, tenant.Order{}, tenant.Page{})
	f.wantCode(err, tenant.EForbidden, "plain user reads the trail")
	_, err = f.svc.Audit.Events(f.as(otherOwner), f.account.ID, audit.Filter{}, tenant.Order{}, tenant.Page{})
	f.wantCode(err, tenant.ENotFound, "another tenant reads the trail")
	_, err = f.svc.Audit.Events(f.staff, uuid.NewString(), audit.Filter{}, tenant.Order{}, tenant.Page{})
	f.wantCode(err, tenant.ENotFound, "staff read an unknown account's trail")
	staffView, err := f.svc.Audit.Events(f.staff, f.account.ID, audit.Filter{}, tenant.Order{}, tenant.Page{})
	if err != nil || len(staffView.Items) != len(all.Items) {
		t.Fatalf("staff see %d events (%v), want %d", len(staffView.Items), err, len(all.Items))
	}
}
