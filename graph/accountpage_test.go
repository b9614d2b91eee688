package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

const staffAccountsPage = `query($n: Int!) { accounts(first: $n) { edges { node {
	id name sftpModule { status } sftpLicences { purchased used available } storage { used quota }
	dedicatedIp { address hostKeyFingerprints { algorithm fingerprint } } lastActivityAt } } } }`

// Support staff's page of accounts with each account's licences, storage
// and dedicated IP (with its host keys) costs the same number of statements
// whatever the page size, and each row answers what the one-account
// services answer.
func TestStaffAccountsPageCostDoesNotGrowWithPageSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{netip.MustParsePrefix("192.0.2.16/28")})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.DedicatedIPs.Config = sftplogin.DedicatedIPConfig{Pool: pool, Cooldown: time.Hour}
	staff := e.staff("support@skiff.example")
	ctx := e.principal(staff)
	sys := tenant.SystemContext(context.Background())
	var ids []string
	for i := range 12 {
		a, _, err := e.svc.Accounts.CreateAccount(sys, account.CreateAccountInput{
			Name: fmt.Sprintf("Acct %02d", i), OwnerEmail: fmt.Sprintf("owner%02d@acct.example", i), OwnerName: "Owner"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
		if i%2 == 0 {
			if _, err := e.svc.SFTP.ActivateSFTPModule(ctx, a.ID, 5+i); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 == 0 {
			q := int64(1000 * (i + 1))
			if _, err := e.svc.Storage.SetStorageQuota(ctx, a.ID, &q); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, i := range []int{0, 5} { // one in the small page, both in the large
		if _, err := e.svc.DedicatedIPs.ProvisionDedicatedIP(ctx, ids[i], ""); err != nil {
			t.Fatal(err)
		}
	}
	small := e.cost(staff, staffAccountsPage, vars{"n": 3}, countEdges("accounts"), 3)
	large := e.cost(staff, staffAccountsPage, vars{"n": 12}, countEdges("accounts"), 12)
	if small != large {
		t.Fatalf("a page of 3 accounts took %d statements, a page of 12 took %d", small, large)
	}
	t.Logf("%d statements for 3 or 12 accounts", small)

	var out struct {
		Accounts struct {
			Edges []struct {
				Node struct {
					ID, Name     string
					SftpLicences *struct{ Purchased, Used, Available int }
					Storage      *struct {
						Used  json.Number
						Quota *json.Number
					}
					DedicatedIp *struct {
						Address             string
						HostKeyFingerprints []struct{ Algorithm, Fingerprint string }
					}
				}
			}
		}
	}
	e.mustDo(staff, staffAccountsPage, vars{"n": 12}, &out)
	withIP := 0
	for _, ed := range out.Accounts.Edges {
		n, id := ed.Node, localID(ed.Node.ID)
		l, err := e.svc.SFTP.SFTPLicences(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n.SftpLicences == nil || n.SftpLicences.Purchased != l.Purchased || n.SftpLicences.Used != l.Used || n.SftpLicences.Available != l.Available {
			t.Errorf("%s: licences %+v, SFTPLicences %+v", n.Name, n.SftpLicences, l)
		}
		st, err := e.svc.Storage.AccountStorage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		quota := ""
		if st.Quota != nil {
			quota = fmt.Sprint(*st.Quota)
		}
		if n.Storage == nil || n.Storage.Used.String() != fmt.Sprint(st.Used) || (n.Storage.Quota == nil) != (st.Quota == nil) ||
			n.Storage.Quota != nil && n.Storage.Quota.String() != quota {
			t.Errorf("%s: storage %+v, AccountStorage %+v", n.Name, n.Storage, st)
		}
		ip, err := e.svc.DedicatedIPs.DedicatedIP(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if (ip == nil) != (n.DedicatedIp == nil) || ip != nil && ip.Address.String() != n.DedicatedIp.Address {
			t.Errorf("%s: dedicated IP %+v, DedicatedIP %+v", n.Name, n.DedicatedIp, ip)
		}
		if ip == nil {
			continue
		}
		withIP++
		fps, err := e.svc.DedicatedIPs.HostKeyFingerprints(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(fps) != 3 || len(n.DedicatedIp.HostKeyFingerprints) != len(fps) {
			t.Fatalf("%s: host keys %+v, HostKeyFingerprints %+v", n.Name, n.DedicatedIp.HostKeyFingerprints, fps)
		}
		for i, f := range fps {
			if g := n.DedicatedIp.HostKeyFingerprints[i]; g.Algorithm != f.Algorithm || g.Fingerprint != f.Fingerprint {
				t.Errorf("%s: host key %d %+v, HostKeyFingerprints %+v", n.Name, i, g, f)
			}
		}
	}
	if withIP != 2 {
		t.Fatalf("%d accounts with a dedicated IP, want 2", withIP)
	}
}
