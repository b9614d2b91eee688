package graph_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"
)

// An admin's page of users with their group, SFTP credentials and keys costs
// the same number of database transactions whatever the page size: the
// per-user fields are loaded in one batch each.
func TestUserPageCostDoesNotGrowWithPageSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	staff := e.staff("support@skiff.example")
	e.mustDo(staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 100}) { userErrors { message } } }`,
		vars{"a": globalID("Account", accountID)}, nil)
	for i := range 30 {
		var u struct {
			CreateUser struct{ User struct{ ID string } }
		}
		e.mustDo(owner, `mutation($e: String!) { createUser(input: {email: $e, name: "User", sftpEnabled: true}) { user { id } } }`,
			vars{"e": "u" + strconv.Itoa(i) + "@acme.example"}, &u)
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sk, _ := ssh.NewPublicKey(pub)
		e.mustDo(owner, `mutation($u: ID!, $k: String!) { addSshKey(input: {userId: $u, title: "laptop", publicKey: $k}) { userErrors { message } } }`,
			vars{"u": u.CreateUser.User.ID, "k": string(ssh.MarshalAuthorizedKey(sk))}, nil)
	}
	page := `query($n: Int!) { account { users(first: $n) { edges { node {
		id name email role group { name } sftp { enabled credentials { login hostKeyFingerprints { fingerprint } } }
		sshKeys { fingerprint lastUsedAt } account { name } } } } } }`
	cost := func(n int) int64 {
		before := e.svc.DB.Transactions()
		var out struct {
			Account struct {
				Users struct {
					Edges []struct {
						Node struct {
							Sftp    struct{ Credentials *struct{ Login string } }
							SshKeys []struct{ Fingerprint string }
						}
					}
				}
			}
		}
		e.mustDo(owner, page, vars{"n": n}, &out)
		got := 0
		for _, ed := range out.Account.Users.Edges {
			if ed.Node.Sftp.Credentials != nil && len(ed.Node.SshKeys) == 1 {
				got++
			}
		}
		if len(out.Account.Users.Edges) != n || got != n-1 && got != n { // the owner has neither
			t.Fatalf("page of %d: %d users, %d with credentials and a key", n, len(out.Account.Users.Edges), got)
		}
		return e.svc.DB.Transactions() - before
	}
	cost(5) // the first request warms the permission cache
	small, large := cost(5), cost(31)
	if small != large {
		t.Fatalf("a page of 5 users took %d transactions, a page of 31 took %d", small, large)
	}
}
