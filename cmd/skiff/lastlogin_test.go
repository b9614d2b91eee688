package main

import (
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/pgserver"
	"github.com/skiffhq/skiff/internal/testkit"
)

// Logins are recorded on the user (users.last_login_at, the LAST_LOGIN
// order) with the documented roles, where the tables' owner is no
// superuser: the login triggers run as that owner, the one role the login
// scopes let update users (migration 00145).
func TestLastLoginUnderTheDocumentedRoles(t *testing.T) {
	pg := startOperatorPG(t)
	_, serviceURL := pg.acmeInstance(t)
	s := serveBinary(t, nil, "--database-url="+serviceURL, "--data-dir="+newDataDir(t))
	const email = "boss@acme.example"
	db := pg.openAs(t, pg.url(pgserver.Superuser, opSuperPassword, "skiff"))
	lastLogin := func() time.Time {
		var at *time.Time
		if err := db.QueryRow(`SELECT last_login_at FROM users WHERE email = $1`, email).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if at == nil {
			return time.Time{}
		}
		return *at
	}
	login := ownerSFTPLogin(t, s, email, acmePassword)

	before := lastLogin()
	gs := &server{http: s.http}
	gs.login(t, email, acmePassword)
	api := lastLogin()
	if !api.After(before) {
		t.Fatalf("an API login left the last login at %v", api)
	}

	c, err := ssh.Dial("tcp", s.sftp, &ssh.ClientConfig{User: login, Auth: []ssh.AuthMethod{ssh.Password(acmePassword)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	testkit.Eventually(t, "the SFTP login to be recorded on the user", func() bool { return lastLogin().After(api) })
}
