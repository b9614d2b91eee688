package sftp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"

	"github.com/skiffhq/skiff/tenant"
)

// Storage quotas through the whole stack, on a node wired as serve wires
// it (TenantBackend.Quotas): an upload over the account's quota answers
// FAILURE "quota exceeded" and is not kept, and df shows the quota.
func TestE2EStorageQuota(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n := e.startNode(t, func(c *Config) { c.Sessions.(*TenantBackend).Quotas = e.svc.Storage }, nil)
	e.setAccountQuota(t, 1<<20)
	_, sc := e.sftpClient(t, n.addr, e.login)
	put := func(name string, size int) error {
		f, err := sc.Create(name)
		if err != nil {
			return err
		}
		if _, err := f.Write([]byte(strings.Repeat("q", size))); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := put("fits.bin", 700<<10); err != nil {
		t.Fatalf("upload within the quota: %v", err)
	}
	err := put("over.bin", 400<<10)
	var se *pkgsftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != pkgsftp.ErrSSHFxFailure || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("upload over the quota: %v; want FAILURE \"quota exceeded\"", err)
	}
	if _, err := sc.Stat("over.bin"); err == nil {
		t.Error("the refused upload was kept")
	}
	st, err := sc.StatVFS("/My Files")
	if err != nil {
		t.Fatal(err)
	}
	if total, free := st.TotalSpace(), st.FreeSpace(); total != 1<<20 || free > (1<<20-700<<10) {
		t.Errorf("df: total %d, free %d; want the quota (%d) and at most %d free", total, free, 1<<20, 1<<20-700<<10)
	}
}

// A session's pool of quota room (reserved ahead of its writes, counted
// as used by statvfs and by every other session) goes back when its
// connection ends, long before the pool's idle time.
func TestE2EQuotaPoolReturnedWhenTheConnectionEnds(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n := e.startNode(t, func(c *Config) {
		b := c.Sessions.(*TenantBackend)
		b.Quotas, b.QuotaPoolIdle = e.svc.Storage, time.Hour
	}, nil)
	e.setAccountQuota(t, 1<<30)
	counted := func() int64 { // stored and reserved
		used, _, _, err := e.svc.Storage.Meter(e.user.AccountID).Space(context.Background(), e.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		return used
	}
	wantCounted := func(what string, want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for counted() != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := counted(); got != want {
			t.Fatalf("%s: %d bytes stored and reserved, want %d", what, got, want)
		}
	}
	c, sc := e.sftpClient(t, n.addr, e.login)
	f, err := sc.Create("a.bin")
	if err == nil {
		_, err = f.Write(make([]byte, 100<<10))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	wantCounted("with the session's pool", 64<<20)
	c.Close()
	wantCounted("after the connection ended", 100<<10)
}

// setAccountQuota sets the fixture account's storage quota, as support
// staff do, and returns support staff's context.
func (e *e2e) setAccountQuota(t *testing.T, bytes int64) context.Context {
	t.Helper()
	staff := tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindStaff, ID: "00000000-0000-4000-8000-000000000001", Name: "Support"})
	if _, err := e.svc.Storage.SetStorageQuota(staff, e.user.AccountID, &bytes); err != nil {
		t.Fatal(err)
	}
	return staff
}
