package domain_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// withPool gives the fixture's deployment a dedicated IP pool of the given
// addresses.
func (f *moduleFixture) withPool(prefixes ...string) {
	f.t.Helper()
	var ps []netip.Prefix
	for _, p := range prefixes {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	pool, err := sftplogin.NewDedicatedIPPool(ps)
	if err != nil {
		f.t.Fatal(err)
	}
	f.svc.DedicatedIPs.Config = sftplogin.DedicatedIPConfig{Pool: pool}
}

// auditKinds lists the account's audit event kinds, oldest first, as staff
// see them.
func (f *moduleFixture) auditKinds(accountID string) []string {
	f.t.Helper()
	c, err := f.svc.Audit.Events(f.staff, accountID, audit.Filter{}, tenant.Order{}, tenant.Page{First: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	var kinds []string
	for i := len(c.Items) - 1; i >= 0; i-- {
		kinds = append(kinds, c.Items[i].Kind)
	}
	return kinds
}

func TestDedicatedIPRequestProvisioned(t *testing.T) {
	f := newModuleFixture(t)
	f.withPool("192.0.2.30/32")
	ips := f.svc.DedicatedIPs

	r, err := ips.RequestDedicatedIP(f.ownerCtx, "  For our bank's firewall.  ")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != sftplogin.RequestOpen || r.Message != "For our bank's firewall." || r.RequestedByEmail != f.owner.Email ||
		r.AccountName != "Acme" {
		t.Fatalf("request = %+v", r)
	}
	// One open request per account.
	_, err = ips.RequestDedicatedIP(f.ownerCtx, "again")
	f.wantCode(err, tenant.EConflict, "a second open request")
	if !strings.Contains(tenant.ErrorMessage(err), "already has an open dedicated IP request") {
		t.Errorf("second request: %v", err)
	}

	// Support sees it in the queue, with who asked and when.
	q, err := ips.DedicatedIPRequests(f.staff, true, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Items) != 1 || q.Items[0].ID != r.ID || q.Items[0].RequestedByName != f.owner.Name ||
		!q.Items[0].CreatedAt.Equal(f.now) {
		t.Fatalf("queue = %+v", q.Items)
	}

	f.advance(time.Hour)
	ip, err := ips.ProvisionDedicatedIP(f.staff, f.account.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ips.DedicatedIPRequest(f.staff, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != sftplogin.RequestProvisioned || got.HandledAt == nil || got.Address == nil || *got.Address != "192.0.2.30" {
		t.Fatalf("request after provisioning = %+v", got)
	}
	if q, _ := ips.DedicatedIPRequests(f.staff, true, tenant.Page{}); len(q.Items) != 0 {
		t.Errorf("open queue after provisioning = %+v", q.Items)
	}
	if all, _ := ips.DedicatedIPRequests(f.staff, false, tenant.Page{}); len(all.Items) != 1 {
		t.Errorf("whole queue after provisioning = %+v", all.Items)
	}

	mails := f.emailsTo(outbox.EmailDedicatedIPProvisioned, f.owner.Email)
	if len(mails) != 1 || mails[0].Data["Address"] != ip.Address.String() || !strings.Contains(mails[0].Raw, "SHA256:") {
		t.Fatalf("provisioned emails = %+v", mails)
	}
	kinds := strings.Join(f.auditKinds(f.account.ID), " ")
	if !strings.Contains(kinds, "dedicated_ip.requested") || !strings.Contains(kinds, "dedicated_ip.request_provisioned") {
		t.Errorf("audit = %s", kinds)
	}

	// With a dedicated IP, there is nothing to request.
	_, err = ips.RequestDedicatedIP(f.ownerCtx, "")
	f.wantCode(err, tenant.EConflict, "a request while the account has a dedicated IP")

	// A provisioning nobody asked for emails nobody.
	if _, err := ips.ReleaseDedicatedIP(f.staff, f.account.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ips.ProvisionDedicatedIP(f.staff, f.account.ID, ""); err != nil {
		t.Fatal(err)
	}
	if n := len(f.emails(outbox.EmailDedicatedIPProvisioned)); n != 1 {
		t.Errorf("%d provisioned emails after an unrequested provisioning, want 1", n)
	}
}

func TestDedicatedIPRequestDeclined(t *testing.T) {
	f := newModuleFixture(t)
	ips := f.svc.DedicatedIPs
	r, err := ips.RequestDedicatedIP(f.ownerCtx, "")
	if err != nil {
		t.Fatal(err)
	}

	_, err = ips.DeclineDedicatedIPRequest(f.staff, r.ID, "   ")
	f.wantCode(err, tenant.EInvalid, "a decline without a reason")
	_, err = ips.DeclineDedicatedIPRequest(f.ownerCtx, r.ID, "no")
	f.wantCode(err, tenant.EForbidden, "an owner declines")

	d, err := ips.DeclineDedicatedIPRequest(f.staff, r.ID, "No addresses are free until May.")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != sftplogin.RequestDeclined || d.DeclineReason == nil || *d.DeclineReason != "No addresses are free until May." || d.HandledAt == nil {
		t.Fatalf("declined = %+v", d)
	}
	mails := f.emailsTo(outbox.EmailDedicatedIPDeclined, f.owner.Email)
	if len(mails) != 1 || mails[0].Data["Reason"] != "No addresses are free until May." {
		t.Fatalf("declined emails = %+v", mails)
	}
	_, err = ips.DeclineDedicatedIPRequest(f.staff, r.ID, "again")
	f.wantCode(err, tenant.EConflict, "declining twice")
	if !strings.Contains(tenant.ErrorMessage(err), "already declined") {
		t.Errorf("declining twice: %v", err)
	}
	if kinds := strings.Join(f.auditKinds(f.account.ID), " "); !strings.Contains(kinds, "dedicated_ip.request_declined") {
		t.Errorf("audit = %s", kinds)
	}

	// Once declined, the owner may ask again.
	if _, err := ips.RequestDedicatedIP(f.ownerCtx, "please reconsider"); err != nil {
		t.Fatal(err)
	}
}

func TestDedicatedIPRequestPermissions(t *testing.T) {
	f := newModuleFixture(t)
	ips := f.svc.DedicatedIPs
	admin := f.newUser("ada@acme.test", tenant.RoleAdmin)
	plain := f.newUser("pat@acme.test", tenant.RoleUser)
	_, otherOwner := f.newAccount("Globex", "gina@globex.test")

	for _, u := range []*tenant.User{admin, plain} {
		_, err := ips.RequestDedicatedIP(f.as(u), "")
		f.wantCode(err, tenant.EForbidden, "a "+string(u.Role)+" requests")
	}
	_, err := ips.RequestDedicatedIP(f.ownerCtx, strings.Repeat("x", 2001))
	f.wantCode(err, tenant.EInvalid, "an overlong message")

	r, err := ips.RequestDedicatedIP(f.ownerCtx, "")
	if err != nil {
		t.Fatal(err)
	}
	// The queue and the requests are support's; to anyone else a request
	// does not exist.
	_, err = ips.DedicatedIPRequests(f.ownerCtx, true, tenant.Page{})
	f.wantCode(err, tenant.EForbidden, "an owner reads the queue")
	for _, ctx := range []struct {
		name string
		who  *tenant.User
	}{{"the owner", f.owner}, {"another account's owner", otherOwner}} {
		_, err := ips.DedicatedIPRequest(f.as(ctx.who), r.ID)
		f.wantCode(err, tenant.ENotFound, ctx.name+" reads the request")
	}
	_, err = ips.DeclineDedicatedIPRequest(f.staff, "00000000-0000-0000-0000-000000000000", "no")
	f.wantCode(err, tenant.ENotFound, "declining an unknown request")
	_, err = ips.DeclineDedicatedIPRequest(f.staff, "not-a-uuid", "no")
	f.wantCode(err, tenant.ENotFound, "declining a malformed ID")

	// The other account's request is its own.
	if _, err := ips.RequestDedicatedIP(f.as(otherOwner), ""); err != nil {
		t.Fatalf("another account's owner requests while Acme's is open: %v", err)
	}
	if q, _ := ips.DedicatedIPRequests(f.staff, true, tenant.Page{}); len(q.Items) != 2 {
		t.Errorf("queue = %d requests, want 2", len(q.Items))
	}
}
