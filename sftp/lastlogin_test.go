package sftp

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// lastSFTPLogin is the user's last SFTP login as admin screens read it
// (User.lastSftpLoginAt).
func (e *e2e) lastSFTPLogin(t *testing.T, userID string) *time.Time {
	t.Helper()
	m, err := e.svc.People.LoginTimesOfUsers(e.owner, e.user.AccountID, []string{userID})
	if err != nil {
		t.Fatal(err)
	}
	if m[userID] == nil {
		t.Fatalf("no login times for %s", userID)
	}
	return m[userID].SFTP
}

// waitLastSFTPLogin waits for the user's last SFTP login to read want: a
// password login records it in the background. The user's row
// (users.last_login_at, kept by a trigger) must then read it too.
func (e *e2e) waitLastSFTPLogin(t *testing.T, userID string, want time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.lastSFTPLogin(t, userID)
		if sameTime(got, want) {
			// The user's row keeps their last login too (the LAST_LOGIN order).
			u, err := e.svc.People.User(e.owner, userID)
			if err != nil {
				t.Fatal(err)
			}
			if !sameTime(u.LastLoginAt, want) {
				t.Fatalf("the user's row: last login %v, want %v", u.LastLoginAt, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last SFTP login %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sameTime reports whether got is want as PostgreSQL stores it (to the microsecond).
func sameTime(got *time.Time, want time.Time) bool {
	return got != nil && got.Sub(want).Abs() < time.Microsecond
}

// A real SSH login, with the password or with a key, is the user's last
// SFTP login (User.lastSftpLoginAt), to the minute.
func TestLastSFTPLoginAfterRealLogins(t *testing.T) {
	e := newE2E(t)
	n := e.startNode(t, nil, nil)
	if got := e.lastSFTPLogin(t, e.user.ID); got != nil {
		t.Fatalf("before any login: %v", got)
	}

	// Password.
	t0 := e.clock.Now()
	c, _ := e.sftpClient(t, n.addr, e.login)
	c.Close()
	e.waitLastSFTPLogin(t, e.user.ID, t0)

	// Key, two minutes later.
	e.clock.Advance(2 * time.Minute)
	_, signer := writePrivateKey(t, t.TempDir())
	if _, err := e.svc.SFTP.AddSSHKey(e.owner, e.user.ID, "laptop", string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); err != nil {
		t.Fatal(err)
	}
	t1 := e.clock.Now()
	kc, err := dial(t, n.addr, &ssh.ClientConfig{User: e.login, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: e.hostKeyChecker(t), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mustSFTP(t, kc)
	e.waitLastSFTPLogin(t, e.user.ID, t1)
}

// A password login writes the last login at most once a minute per user:
// within the minute nothing is written, by this node (which remembers) or
// by another (the statement's condition); after it, the time moves.
func TestLastSFTPLoginWrittenOncePerMinute(t *testing.T) {
	e := newE2E(t)
	ctx := context.Background()
	dirA, dirB := sftplogin.NewDirectory(e.svc.DB), sftplogin.NewDirectory(e.svc.DB)
	dirA.Now, dirB.Now = e.clock.Now, e.clock.Now
	l := &sftplogin.Login{AccountID: e.user.AccountID, UserID: e.user.ID, Login: e.login}
	writes := func(d *sftplogin.Directory) int64 {
		before := e.svc.DB.Transactions()
		if err := d.MarkLogin(ctx, l); err != nil {
			t.Fatal(err)
		}
		return e.svc.DB.Transactions() - before
	}

	t0 := e.clock.Now()
	if n := writes(dirA); n != 1 {
		t.Fatalf("first login: %d transactions, want 1", n)
	}
	if got := e.lastSFTPLogin(t, e.user.ID); !sameTime(got, t0) {
		t.Fatalf("after the first login: %v, want %v", got, t0)
	}
	e.clock.Advance(30 * time.Second)
	if n := writes(dirA); n != 0 {
		t.Fatalf("a login 30 s later on the same node: %d transactions, want none", n)
	}
	writes(dirB) // another node does not know; the row keeps its time
	if got := e.lastSFTPLogin(t, e.user.ID); !sameTime(got, t0) {
		t.Fatalf("30 s later: %v, want %v still", got, t0)
	}
	e.clock.Advance(31 * time.Second)
	t1 := e.clock.Now()
	if n := writes(dirA); n != 1 {
		t.Fatalf("a login 61 s later: %d transactions, want 1", n)
	}
	if got := e.lastSFTPLogin(t, e.user.ID); !sameTime(got, t1) {
		t.Fatalf("61 s later: %v, want %v", got, t1)
	}
}
