package graph_test

import (
	"fmt"
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
)

// Every mutation that takes a user ID, run by an owner, an administrator and
// a user against another owner, an administrator and a user, gives the
// matrix of docs/PERMISSIONS.md ("Who may change whom"). An administrator can
// never change an owner's keys, group, SFTP access or custom login (with a
// key they could log in as the owner), nor anything else of theirs; a plain
// user changes no one else. "Allowed" means the permission check passed: the
// answer may still be a user error of the mutation's own (SFTP module not
// active, no dedicated IP, user not deleted...).
func TestWhoMayChangeWhom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	owner2ID, _ := e.user(owner, "owner2@acme.example", "OWNER")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	admin2ID, _ := e.user(owner, "admin2@acme.example", "ADMIN")
	_, user := e.user(owner, "user@acme.example", "USER")
	user2ID, _ := e.user(owner, "user2@acme.example", "USER")
	var groups struct {
		Account struct {
			Groups struct {
				Edges []struct{ Node struct{ ID, Builtin string } }
			}
		}
	}
	e.mustDo(owner, `{ account { groups { edges { node { id builtin } } } } }`, nil, &groups)
	jailed := ""
	for _, g := range groups.Account.Groups.Edges {
		if g.Node.Builtin == "JAILED" {
			jailed = g.Node.ID
		}
	}
	var folder struct {
		CreateProjectFolder struct{ ProjectFolder struct{ ID string } }
	}
	e.mustDo(owner, `mutation { createProjectFolder(input: {name: "Shared"}) { projectFolder { id } } }`, nil, &folder)
	folderID := folder.CreateProjectFolder.ProjectFolder.ID

	// newKey adds a fresh key to target as the first owner, for rename and delete.
	newKey := func(target string) string {
		var out struct {
			AddSshKey struct{ SshKey struct{ ID string } }
		}
		e.mustDo(owner, `mutation($u: ID!, $k: String!) { addSshKey(input: {userId: $u, title: "k", publicKey: $k}) { sshKey { id } } }`,
			vars{"u": target, "k": testkit.AuthorizedKey(testkit.Ed25519Key(t), "")}, &out)
		return out.AddSshKey.SshKey.ID
	}
	// groupOf puts target, as the first owner, in a new custom group of
	// their own (with My Files, as they had) and returns its ID.
	var groupsMade []string
	groupOf := func(target string) string {
		var out struct {
			CreateGroup struct{ Group struct{ ID string } }
		}
		e.mustDo(owner, `mutation($n: String!) { createGroup(input: {name: $n, permissions: [SFTP_MY_FILES]}) { group { id } } }`,
			vars{"n": fmt.Sprintf("Group %d", len(groupsMade))}, &out)
		g := out.CreateGroup.Group.ID
		groupsMade = append(groupsMade, g)
		e.mustDo(owner, `mutation($u: ID!, $g: ID!) { setUserGroup(input: {userId: $u, groupId: $g}) { user { id } } }`, vars{"u": target, "g": g}, nil)
		return g
	}
	type mutation struct {
		name  string
		query string
		vars  func(target string) vars
		undo  func(target string) // after an allowed run, as the first owner
	}
	id := func(target string) vars { return vars{"id": target} }
	mutations := []mutation{
		{"updateUser", `mutation($id: ID!) { updateUser(input: {id: $id, name: "Renamed"}) { userErrors { code } } }`, id, nil},
		{"updateUser sftpEnabled", `mutation($id: ID!) { updateUser(input: {id: $id, sftpEnabled: false}) { userErrors { code } } }`, id, nil},
		{"updateUser customSftpLogin", `mutation($id: ID!) { updateUser(input: {id: $id, customSftpLogin: "mine"}) { userErrors { code } } }`, id, nil},
		{"deleteUser", `mutation($id: ID!) { deleteUser(input: {id: $id}) { userErrors { code } } }`, id,
			func(target string) {
				e.mustDo(owner, `mutation($id: ID!) { restoreUser(input: {id: $id}) { user { id } } }`, vars{"id": target}, nil)
			}},
		{"restoreUser", `mutation($id: ID!) { restoreUser(input: {id: $id}) { userErrors { code } } }`, id, nil},
		{"addSshKey", `mutation($u: ID!, $k: String!) { addSshKey(input: {userId: $u, title: "mine", publicKey: $k}) { userErrors { code } } }`,
			func(target string) vars {
				return vars{"u": target, "k": testkit.AuthorizedKey(testkit.Ed25519Key(t), "")}
			}, nil},
		{"renameSshKey", `mutation($id: ID!) { renameSshKey(input: {id: $id, title: "renamed"}) { userErrors { code } } }`,
			func(target string) vars { return vars{"id": newKey(target)} }, nil},
		{"updateSshKey", `mutation($id: ID!) { updateSshKey(input: {id: $id, title: "t", expiresAt: null, status: DISABLED}) { userErrors { code } } }`,
			func(target string) vars { return vars{"id": newKey(target)} }, nil},
		{"deleteSshKey", `mutation($id: ID!) { deleteSshKey(input: {id: $id}) { userErrors { code } } }`,
			func(target string) vars { return vars{"id": newKey(target)} }, nil},
		{"setSftpAccess", `mutation($u: ID!) { setSftpAccess(input: {userId: $u, enabled: true}) { userErrors { code } } }`,
			func(target string) vars { return vars{"u": target} }, nil},
		{"setCustomSftpLogin", `mutation($u: ID!) { setCustomSftpLogin(input: {userId: $u, login: "mine"}) { userErrors { code } } }`,
			func(target string) vars { return vars{"u": target} }, nil},
		{"setUserGroup", `mutation($u: ID!, $g: ID!) { setUserGroup(input: {userId: $u, groupId: $g}) { userErrors { code } } }`,
			func(target string) vars { return vars{"u": target, "g": jailed} }, nil},
		// A group the target is alone in: its permissions are the target's.
		{"updateGroup permissions", `mutation($g: ID!) { updateGroup(input: {id: $g, permissions: [CREATE_PROJECT_FOLDERS]}) { userErrors { code } } }`,
			func(target string) vars { return vars{"g": groupOf(target)} }, nil},
		{"updateGroup name", `mutation($g: ID!, $n: String!) { updateGroup(input: {id: $g, name: $n}) { userErrors { code } } }`,
			func(target string) vars {
				g := groupOf(target)
				return vars{"g": g, "n": "Renamed " + g}
			}, nil},
		{"resendInvitation", `mutation($u: ID!) { resendInvitation(input: {userId: $u}) { userErrors { code } } }`,
			func(target string) vars { return vars{"u": target} }, nil},
		{"shareProjectFolder", `mutation($f: ID!, $u: ID!) { shareProjectFolder(input: {folderId: $f, userId: $u, preset: READ}) { userErrors { code } } }`,
			func(target string) vars { return vars{"f": folderID, "u": target} }, nil},
		{"unshareProjectFolder", `mutation($f: ID!, $u: ID!) { unshareProjectFolder(input: {folderId: $f, userId: $u}) { userErrors { code } } }`,
			func(target string) vars { return vars{"f": folderID, "u": target} }, nil},
	}
	// The documented matrix: what each actor may do to each target, for
	// every mutation but those listed in ownersAnyone (which change nothing
	// an owner could be impersonated with, and are open to administrators).
	type actor struct {
		name, token string
	}
	type target struct {
		name, id string
	}
	actors := []actor{{"owner", owner}, {"admin", admin}, {"user", user}}
	targets := []target{{"owner", owner2ID}, {"admin", admin2ID}, {"user", user2ID}}
	allowed := map[string]map[string]bool{ // actor -> target -> allowed
		"owner": {"owner": true, "admin": true, "user": true},
		"admin": {"owner": false, "admin": true, "user": true},
		"user":  {"owner": false, "admin": false, "user": false},
	}
	adminsMayOnOwners := map[string]bool{"resendInvitation": true, "shareProjectFolder": true, "unshareProjectFolder": true,
		"updateGroup name": true}

	for _, m := range mutations {
		for _, a := range actors {
			for _, tg := range targets {
				want := allowed[a.name][tg.name]
				if a.name == "admin" && tg.name == "owner" && adminsMayOnOwners[m.name] {
					want = true
				}
				r := e.do(a.token, m.query, m.vars(tg.id))
				got := len(r.Errors) == 0
				what := fmt.Sprintf("%s as %s on %s", m.name, a.name, tg.name)
				if got != want {
					t.Errorf("%s: allowed %v, want %v (errors %+v, data %s)", what, got, want, r.Errors, r.Data)
					continue
				}
				if !got {
					if c := r.Errors[0].code(); c != "FORBIDDEN" && c != "NOT_FOUND" {
						t.Errorf("%s: refused with %s, want FORBIDDEN or NOT_FOUND", what, c)
					}
				} else if m.undo != nil {
					m.undo(tg.id)
				}
			}
		}
	}
}
