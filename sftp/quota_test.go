package sftp

import (
	"context"
	"errors"
	"strings"
	"testing"

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
	staff := tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindStaff, ID: "00000000-0000-4000-8000-000000000001", Name: "Support"})
	quota := int64(1 << 20)
	if _, err := e.svc.Storage.SetStorageQuota(staff, e.user.AccountID, &quota); err != nil {
		t.Fatal(err)
	}
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
