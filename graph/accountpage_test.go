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
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

const staffAccountsPage = `query($n: Int!) { accounts(first: $n) { edges { node {
	id name sftpModule { status } sftpLicences { purchased used available } storage { used quota }
	dedicatedIp { address hostKeyFingerprints { algorithm fingerprint } } lastActivityAt
	users { totalCount } admins: users(filter: {role: ADMIN}, first: 2, orderBy: {field: EMAIL, direction: DESC}) {
		totalCount edges { node { email } } pageInfo { hasNextPage } } sftpSessions { id user { email } node } } } } }`

// Support staff's page of accounts with each account's licences, storage,
// dedicated IP (with its host keys), user count, a page of its
// administrators and live SFTP sessions costs the same number of statements whatever the page
// size, and each row answers what the one-account services answer.
func TestStaffAccountsPageCostDoesNotGrowWithPageSize(t *testing.T) {
	t.Parallel()
	e := newCostEnv(t)
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
		a, owner, err := e.svc.Accounts.CreateAccount(sys, account.CreateAccountInput{
			Name: fmt.Sprintf("Acct %02d", i), OwnerEmail: fmt.Sprintf("owner%02d@acct.example", i), OwnerName: "Owner"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
		asOwner := tenant.WithPrincipal(context.Background(), &tenant.Principal{
			Kind: tenant.KindUser, ID: owner.ID, AccountID: a.ID, Role: tenant.RoleOwner, Name: "Owner"})
		for j := range i % 5 { // 1 to 5 users, 0 to 3 administrators
			role := tenant.RoleUser
			if j%4 != 3 {
				role = tenant.RoleAdmin
			}
			if _, err := e.svc.People.CreateUser(asOwner, people.CreateUserInput{
				Email: fmt.Sprintf("u%d@acct%02d.example", j, i), Name: "U", Role: role}); err != nil {
				t.Fatal(err)
			}
		}
		for range i % 3 { // 0 to 2 live SFTP sessions, the owner's
			e.liveSftpSession(a.ID, owner.ID)
		}
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
					SftpSessions []struct {
						ID, Node string
						User     struct{ Email string }
					}
					Users  struct{ TotalCount int }
					Admins struct {
						TotalCount int
						Edges      []struct{ Node struct{ Email string } }
						PageInfo   struct{ HasNextPage bool }
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
		all, err := e.svc.People.Users(ctx, id, people.UserFilter{}, tenant.Order{}, tenant.Page{Count: true})
		if err != nil {
			t.Fatal(err)
		}
		if n.Users.TotalCount != all.Total {
			t.Errorf("%s: users { totalCount } %d, Users %d", n.Name, n.Users.TotalCount, all.Total)
		}
		admins, err := e.svc.People.Users(ctx, id, people.UserFilter{Role: tenant.RoleAdmin},
			tenant.Order{Field: "EMAIL", Desc: true}, tenant.Page{First: 2, Count: true})
		if err != nil {
			t.Fatal(err)
		}
		var emails []string
		for _, ed := range n.Admins.Edges {
			emails = append(emails, ed.Node.Email)
		}
		var want []string
		for _, u := range admins.Items {
			want = append(want, u.Email)
		}
		if fmt.Sprint(emails) != fmt.Sprint(want) || n.Admins.TotalCount != admins.Total || n.Admins.PageInfo.HasNextPage != admins.HasNext {
			t.Errorf("%s: administrators %v (%d, more: %v), Users %v (%d, more: %v)", n.Name,
				emails, n.Admins.TotalCount, n.Admins.PageInfo.HasNextPage, want, admins.Total, admins.HasNext)
		}
		live, err := e.svc.LiveSessions.List(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(n.SftpSessions) != len(live) {
			t.Errorf("%s: %d SFTP sessions, List %d", n.Name, len(n.SftpSessions), len(live))
		}
		for i, sess := range live {
			if i < len(n.SftpSessions) && (localID(n.SftpSessions[i].ID) != sess.ID || n.SftpSessions[i].Node != sess.NodeName ||
				n.SftpSessions[i].User.Email != fmt.Sprintf("owner%s@acct.example", n.Name[len("Acct "):])) {
				t.Errorf("%s: SFTP session %d %+v, List %+v", n.Name, i, n.SftpSessions[i], sess)
			}
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
