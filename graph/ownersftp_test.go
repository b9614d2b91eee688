package graph_test

import (
	"encoding/json"
	"testing"
)

// moduleEmails returns the data of the outbox's emails of kind to to, oldest
// first, read as the database owner.
func (e *env) moduleEmails(kind, to string) []map[string]any {
	e.t.Helper()
	var raw []string
	if err := e.svc.DB.X.Select(&raw, `SELECT data::text FROM outbox WHERE kind = $1 AND recipient = $2 ORDER BY created_at, id`, kind, to); err != nil {
		e.t.Fatal(err)
	}
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r), &out[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// ownSFTPState is what GraphQL says of a user's SFTP and the account's licences.
type ownSFTPState struct {
	Node struct {
		Sftp struct {
			Enabled     bool
			Credentials *struct {
				Login               string
				HostKeyFingerprints []struct{ Fingerprint string }
			}
		}
	}
	Account struct {
		SftpLicences struct{ Purchased, Used, Available int }
	}
}

func (e *env) ownSFTP(token, userID string) ownSFTPState {
	e.t.Helper()
	var s ownSFTPState
	e.mustDo(token, `query($id: ID!) { node(id: $id) { ... on User { sftp { enabled credentials { login hostKeyFingerprints { fingerprint } } } } }
		account { sftpLicences { purchased used available } } }`, vars{"id": userID}, &s)
	return s
}

func (e *env) viewerID(token string) string {
	e.t.Helper()
	var v struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(token, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &v)
	return v.Viewer.User.ID
}

// wantOwnSFTPEmail checks that the one email of kind to to carries login and
// the host keys' fingerprints.
func (e *env) wantOwnSFTPEmail(kind, to string, s ownSFTPState) {
	e.t.Helper()
	mails := e.moduleEmails(kind, to)
	if len(mails) != 1 {
		e.t.Fatalf("%s emails to %s: %d, want 1", kind, to, len(mails))
	}
	own, _ := mails[0]["OwnSFTP"].(map[string]any)
	keys, _ := own["HostKeys"].([]any)
	if own == nil || own["Login"] != s.Node.Sftp.Credentials.Login || len(keys) != len(s.Node.Sftp.Credentials.HostKeyFingerprints) || len(keys) == 0 {
		e.t.Fatalf("%s email to %s = %v, want login %s and %d host keys", kind, to, mails[0], s.Node.Sftp.Credentials.Login,
			len(s.Node.Sftp.Credentials.HostKeyFingerprints))
	}
	for i, k := range keys {
		if k.(map[string]any)["Fingerprint"] != s.Node.Sftp.Credentials.HostKeyFingerprints[i].Fingerprint {
			e.t.Fatalf("%s email's host keys %v differ from sftpServer's %v", kind, keys, s.Node.Sftp.Credentials.HostKeyFingerprints)
		}
	}
}

func TestOwnerSFTPWithTrialThroughGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	staff := e.staff("support@skiff.example")
	ownerID := e.viewerID(owner)
	e.mustDo(owner, `mutation { startSftpTrial { account { id } userErrors { message } } }`, nil, nil)

	s := e.ownSFTP(owner, ownerID)
	if !s.Node.Sftp.Enabled || s.Node.Sftp.Credentials == nil || s.Account.SftpLicences.Used != 1 {
		t.Fatalf("after the trial's start: %+v", s)
	}
	e.wantOwnSFTPEmail("module_trial_started", "owner@acme.example", s)
	if n := len(e.moduleEmails("sftp_enabled", "owner@acme.example")); n != 0 {
		t.Fatalf("%d separate credentials emails to the owner", n)
	}

	// Activation after the trial: no credentials again, nothing re-issued.
	e.mustDo(staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 10}) { userErrors { message } } }`,
		vars{"a": globalID("Account", accountID)}, nil)
	act := e.moduleEmails("module_activated", "owner@acme.example")
	if len(act) != 1 || act[0]["OwnSFTP"] != nil || act[0]["NoLicenceForOwner"] == true {
		t.Fatalf("activation emails after the trial: %v", act)
	}
	if again := e.ownSFTP(owner, ownerID); again.Node.Sftp.Credentials.Login != s.Node.Sftp.Credentials.Login || again.Account.SftpLicences.Used != 1 {
		t.Fatalf("after activation: %+v, before %+v", again, s)
	}
}

func TestOwnerSFTPWithFirstActivationThroughGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	askerID, asker := e.user(owner, "otto@acme.example", "OWNER")
	staff := e.staff("support@skiff.example")
	e.mustDo(asker, `mutation { requestSftpModule(input: {message: "five please"}) { request { id } userErrors { message } } }`, nil, nil)
	e.mustDo(staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 5}) { userErrors { message } } }`,
		vars{"a": globalID("Account", accountID)}, nil)

	s := e.ownSFTP(asker, askerID)
	if !s.Node.Sftp.Enabled || s.Node.Sftp.Credentials == nil || s.Account.SftpLicences.Used != 1 {
		t.Fatalf("the asking owner after activation: %+v", s)
	}
	e.wantOwnSFTPEmail("module_activated", "otto@acme.example", s)
	if other := e.ownSFTP(owner, e.viewerID(owner)); other.Node.Sftp.Enabled {
		t.Fatalf("the owner who did not ask got SFTP: %+v", other)
	}
}

func TestModuleStartsWithNoLicenceThroughGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	staff := e.staff("support@skiff.example")
	var act struct {
		ActivateSftpModule struct {
			Account    struct{ SftpModule struct{ Status string } }
			UserErrors []userError
		}
	}
	e.mustDo(staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 0}) { account { sftpModule { status } } userErrors { message } } }`,
		vars{"a": globalID("Account", accountID)}, &act)
	if act.ActivateSftpModule.Account.SftpModule.Status != "ACTIVE" || len(act.ActivateSftpModule.UserErrors) != 0 {
		t.Fatalf("activation with no licence: %+v", act)
	}
	if s := e.ownSFTP(owner, e.viewerID(owner)); s.Node.Sftp.Enabled || s.Node.Sftp.Credentials != nil {
		t.Fatalf("the owner got SFTP with no licence: %+v", s)
	}
	mails := e.moduleEmails("module_activated", "owner@acme.example")
	if len(mails) != 1 || mails[0]["NoLicenceForOwner"] != true || mails[0]["OwnSFTP"] != nil {
		t.Fatalf("activation email with no licence: %v", mails)
	}
}
