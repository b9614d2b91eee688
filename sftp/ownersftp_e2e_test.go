package sftp

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
)

// An owner connects with nothing but the module email: the trial's, when
// they start it, or the first activation's, when they asked for the module.
// The login and the host keys come from the email; the password is the
// owner's account password.
func TestE2EOwnerConnectsFromModuleEmail(t *testing.T) {
	e := newE2E(t)
	ctx := context.Background()
	st, err := e.svc.People.CreateStaff(tenant.SystemContext(ctx), "desk@skiff.test", "Desk", "staff password 123")
	if err != nil {
		t.Fatal(err)
	}
	staff := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindStaff, ID: st.ID, Name: st.Name, Email: st.Email})
	for _, c := range []struct{ name, kind string }{{"trial", "module_trial_started"}, {"activation", "module_activated"}} {
		t.Run(c.name, func(t *testing.T) {
			a, owner, err := e.svc.Accounts.CreateAccount(staff, account.CreateAccountInput{Name: "Owner by " + c.name,
				OwnerEmail: c.name + "@owner.test", OwnerName: "Owen", OwnerPassword: e.password})
			if err != nil {
				t.Fatal(err)
			}
			octx := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindUser, ID: owner.ID, AccountID: a.ID,
				Role: owner.Role, Name: owner.Name, Email: owner.Email})
			if c.name == "trial" {
				_, err = e.svc.SFTP.StartSFTPTrial(octx)
			} else {
				if _, err = e.svc.SFTP.RequestSFTPModule(octx, "we need SFTP"); err == nil {
					_, err = e.svc.SFTP.ActivateSFTPModule(staff, a.ID, 3)
				}
			}
			if err != nil {
				t.Fatal(err)
			}

			var rows []string
			if err := e.svc.DB.X.Select(&rows, `SELECT data::text FROM outbox WHERE kind = $1 AND recipient = $2`, c.kind, owner.Email); err != nil {
				t.Fatal(err)
			}
			var mail struct {
				OwnSFTP *struct {
					Login    string
					HostKeys []struct{ Fingerprint string }
				}
			}
			if len(rows) != 1 {
				t.Fatalf("%d %s emails to the owner, want 1", len(rows), c.kind)
			}
			if err := json.Unmarshal([]byte(rows[0]), &mail); err != nil {
				t.Fatal(err)
			}
			if mail.OwnSFTP == nil || mail.OwnSFTP.Login == "" || len(mail.OwnSFTP.HostKeys) == 0 {
				t.Fatalf("%s email carries no SFTP login and host keys: %s", c.kind, rows[0])
			}
			checkHostKey := func(_ string, _ net.Addr, key ssh.PublicKey) error {
				if slices.ContainsFunc(mail.OwnSFTP.HostKeys, func(k struct{ Fingerprint string }) bool { return k.Fingerprint == ssh.FingerprintSHA256(key) }) {
					return nil
				}
				return errors.New("host key is not one of the email's fingerprints")
			}
			conn, err := dial(t, e.addr, &ssh.ClientConfig{User: mail.OwnSFTP.Login, Auth: []ssh.AuthMethod{ssh.Password(e.password)},
				HostKeyCallback: checkHostKey})
			if err != nil {
				t.Fatalf("the owner's login %s from the %s email: %v", mail.OwnSFTP.Login, c.kind, err)
			}
			sc := mustSFTP(t, conn)
			f, err := sc.Create("/My Files/hello.txt")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if fi, err := sc.Stat("/My Files/hello.txt"); err != nil || fi.Size() != 5 {
				t.Fatalf("the owner's upload: %v, %v", fi, err)
			}
		})
	}
}
