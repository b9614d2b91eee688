package graph_test

import (
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
)

// An SSH key's expiry and status are set when it is added and changed with
// updateSshKey along with the title: a field left out stays, expiresAt null
// clears the expiry, renameSshKey still works.
func TestSSHKeyExpiryAndStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	type key struct {
		ID, Title, Status string
		ExpiresAt         *string
	}
	var added struct{ AddSshKey struct{ SshKey key } }
	e.mustDo(owner, `mutation($k: String!) { addSshKey(input: {title: "ci", publicKey: $k, expiresAt: "2031-01-02T03:04:05Z", status: DISABLED}) {
		sshKey { id title status expiresAt } } }`, vars{"k": testkit.AuthorizedKey(testkit.Ed25519Key(t), "")}, &added)
	k := added.AddSshKey.SshKey
	if k.Status != "DISABLED" || k.ExpiresAt == nil || *k.ExpiresAt != "2031-01-02T03:04:05Z" {
		t.Fatalf("added key = %+v", k)
	}
	const update = `mutation($in: UpdateSshKeyInput!) { updateSshKey(input: $in) { sshKey { id title status expiresAt } userErrors { code field } } }`
	var out struct {
		UpdateSshKey struct {
			SshKey     key
			UserErrors []struct{ Code, Field string }
		}
	}
	e.mustDo(owner, update, vars{"in": vars{"id": k.ID, "status": "ACTIVE"}}, &out)
	if got := out.UpdateSshKey.SshKey; got.Status != "ACTIVE" || got.Title != "ci" || got.ExpiresAt == nil {
		t.Errorf("after enabling: %+v (title and expiry should stay)", got)
	}
	e.mustDo(owner, update, vars{"in": vars{"id": k.ID, "title": "CI runner", "expiresAt": nil}}, &out)
	if got := out.UpdateSshKey.SshKey; got.Status != "ACTIVE" || got.Title != "CI runner" || got.ExpiresAt != nil {
		t.Errorf("after renaming and clearing the expiry: %+v", got)
	}
	e.mustDo(owner, update, vars{"in": vars{"id": k.ID, "title": ""}}, &out)
	if ue := out.UpdateSshKey.UserErrors; len(ue) != 1 || ue[0].Code != "INVALID" || ue[0].Field != "title" {
		t.Errorf("empty title: user errors %+v", ue)
	}
	var renamed struct{ RenameSshKey struct{ SshKey key } }
	e.mustDo(owner, `mutation($id: ID!) { renameSshKey(input: {id: $id, title: "Old way"}) { sshKey { id title status expiresAt } } }`,
		vars{"id": k.ID}, &renamed)
	if got := renamed.RenameSshKey.SshKey; got.Title != "Old way" || got.Status != "ACTIVE" {
		t.Errorf("renameSshKey: %+v", got)
	}
}

// addSshKey reports a bad title and a bad key together, each on its field.
func TestAddSSHKeyReportsEveryBadField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	var out struct {
		AddSshKey struct {
			SshKey     *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation { addSshKey(input: {title: "  ", publicKey: "ssh-ed25519 not-a-key"}) {
		sshKey { id } userErrors { field code message } } }`, nil, &out)
	if out.AddSshKey.SshKey != nil || invalidFields(t, out.AddSshKey.UserErrors) != "title,publicKey" {
		t.Fatalf("want errors on title and publicKey, got %+v", out.AddSshKey)
	}
}
