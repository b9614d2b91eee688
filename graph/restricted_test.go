package graph_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
)

// forbiddenAt asserts that r has exactly one FORBIDDEN error at each of
// paths (dot-separated), and no other error, and returns r's data.
func forbiddenAt(t *testing.T, what string, r response, paths ...string) map[string]any {
	t.Helper()
	var got []string
	for _, e := range r.Errors {
		var p []string
		for _, s := range e.Path {
			p = append(p, strings.Trim(strings.TrimSpace(jsonText(s)), `"`))
		}
		if e.code() != "FORBIDDEN" {
			t.Errorf("%s: error %+v, want only FORBIDDEN ones", what, e)
		}
		got = append(got, strings.Join(p, "."))
	}
	slices.Sort(got)
	want := slices.Clone(paths)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: FORBIDDEN at %q, want at %q", what, got, want)
	}
	var data map[string]any
	if err := json.Unmarshal(r.Data, &data); err != nil || data == nil {
		t.Fatalf("%s: data %s: %v", what, r.Data, err)
	}
	return data
}

func jsonText(v any) string { b, _ := json.Marshal(v); return string(b) }

// dig follows a dot-separated path of object keys and list indexes in data.
func dig(data any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch v := data.(type) {
		case map[string]any:
			data = v[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(v) {
				return nil
			}
			data = v[i]
		default:
			return nil
		}
	}
	return data
}

// Support staff see what a support screen needs of a user and an account:
// their SSH keys and SFTP credentials (never an empty list that reads as
// "no keys"), and the account's groups with their members (users they
// see anyway), as the account's owners see them.
func TestStaffSeeKeysCredentialsAndGroups(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	userID, _ := e.user(owner, "user@acme.example", "USER")
	staff := e.staff("support@skiff.example")
	e.mustDo(owner, `mutation { startSftpTrial { userErrors { message } } }`, nil, nil)
	e.mustDo(owner, `mutation($u: ID!) { setSftpAccess(input: {userId: $u, enabled: true}) { userErrors { message } } }`, vars{"u": userID}, nil)
	e.mustDo(owner, `mutation($u: ID!, $k: String!) { addSshKey(input: {userId: $u, title: "laptop", publicKey: $k}) { userErrors { message } } }`,
		vars{"u": userID, "k": testkit.AuthorizedKey(testkit.Ed25519Key(t), "")}, nil)

	var u struct {
		Node struct {
			SshKeys []struct{ Title string }
			Sftp    struct {
				Credentials *struct {
					Login               string
					HostKeyFingerprints []struct{ Fingerprint string }
				}
			}
			Group *struct{ Name string }
		}
	}
	e.mustDo(staff, `query($id: ID!) { node(id: $id) { ... on User {
		sshKeys { title } sftp { credentials { login hostKeyFingerprints { fingerprint } } } group { name } } } }`, vars{"id": userID}, &u)
	if len(u.Node.SshKeys) != 1 || u.Node.SshKeys[0].Title != "laptop" {
		t.Errorf("staff see keys %+v, want the user's key", u.Node.SshKeys)
	}
	if c := u.Node.Sftp.Credentials; c == nil || c.Login == "" || len(c.HostKeyFingerprints) == 0 {
		t.Errorf("staff see credentials %+v", c)
	}
	if u.Node.Group == nil || u.Node.Group.Name != "Pro" {
		t.Errorf("staff see group %+v", u.Node.Group)
	}
	// The same through a page of users (the batched loads).
	var page struct {
		Account struct {
			Users struct {
				Edges []struct {
					Node struct {
						Email   string
						SshKeys []struct{ Title string }
						Sftp    struct{ Credentials *struct{ Login string } }
					}
				}
			}
		}
	}
	e.mustDo(staff, `query($id: ID) { account(id: $id) { users { edges { node { email sshKeys { title } sftp { credentials { login } } } } } } }`,
		vars{"id": globalID("Account", accountID)}, &page)
	for _, edge := range page.Account.Users.Edges {
		if edge.Node.Email == "user@acme.example" && (len(edge.Node.SshKeys) != 1 || edge.Node.Sftp.Credentials == nil) {
			t.Errorf("staff's page of users: %+v", edge.Node)
		}
	}

	// The account's groups with their members, one page each, as its
	// owners see them.
	groupsQuery := `query($id: ID) { account(id: $id) { name groups { edges { node { name memberCount
		members(first: 10) { totalCount edges { node { email } } } } } } } }`
	type groupsView struct {
		Account struct {
			Name   string
			Groups struct {
				Edges []struct {
					Node struct {
						Name        string
						MemberCount int
						Members     *struct {
							TotalCount int
							Edges      []struct{ Node struct{ Email string } }
						}
					}
				}
			}
		}
	}
	var seen, owners groupsView
	e.mustDo(staff, groupsQuery, vars{"id": globalID("Account", accountID)}, &seen)
	e.mustDo(owner, groupsQuery, vars{"id": globalID("Account", accountID)}, &owners)
	if seen.Account.Name != "Acme" || len(seen.Account.Groups.Edges) != 3 { // Pro, Associate, Jailed Users
		t.Fatalf("staff see the account's groups as %+v", seen.Account)
	}
	for i, ed := range seen.Account.Groups.Edges {
		g, want := ed.Node, owners.Account.Groups.Edges[i].Node
		if g.Members == nil || g.Members.TotalCount != g.MemberCount || fmt.Sprint(g.Members) != fmt.Sprint(want.Members) {
			t.Errorf("group %s: staff see the members %+v, the owner %+v", g.Name, g.Members, want.Members)
		}
	}
	if g := seen.Account.Groups.Edges[0].Node; g.Name != "Pro" || g.MemberCount != 2 || len(g.Members.Edges) != 2 {
		t.Errorf("staff see Pro as %+v", g)
	}
}

// A field a role may not see is null with a FORBIDDEN error at its own path;
// the object around it and its other fields arrive.
func TestRestrictedFieldsAreNullWithAnErrorAtTheirPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	adminID, _ := e.user(owner, "admin@acme.example", "ADMIN")
	_, user := e.user(owner, "user@acme.example", "USER")
	staff := e.staff("support@skiff.example")

	// A plain user reading their account.
	r := e.do(user, `{ account { name usersCsv sftpLicences { purchased } contacts { edges { node { id } } }
		ipAllowlist storage { used } notifications { edges { node { id } } } auditEvents { edges { node { id } } }
		groups { edges { node { name members { edges { node { id } } } } } } sftpActivity { edges { __typename } } } }`, nil)
	data := forbiddenAt(t, "user's account", r, "account.usersCsv", "account.sftpLicences", "account.contacts",
		"account.ipAllowlist", "account.storage", "account.notifications", "account.auditEvents",
		"account.groups.edges.0.node.members", "account.sftpActivity")
	if dig(data, "account.name") != "Acme" || dig(data, "account.groups.edges.0.node.name") != "Pro" {
		t.Errorf("user's account: data %s", r.Data)
	}

	// Staff reading an account: what holds the account's files or its
	// people's contact details is not theirs.
	r = e.do(staff, `query($id: ID) { account(id: $id) { name usersCsv contacts { edges { node { id } } }
		projectFolders { edges { node { id } } } users { edges { node { email projectsSharedWithMe { edges { preset } } } } } } }`,
		vars{"id": globalID("Account", accountID)})
	data = forbiddenAt(t, "staff's account", r, "account.usersCsv", "account.contacts", "account.projectFolders",
		"account.users.edges.0.node.projectsSharedWithMe", "account.users.edges.1.node.projectsSharedWithMe",
		"account.users.edges.2.node.projectsSharedWithMe")
	if dig(data, "account.name") != "Acme" || dig(data, "account.users.edges.2.node.email") == nil {
		t.Errorf("staff's account: data %s", r.Data)
	}

	// A user who may share a folder sees who has it, but not those users'
	// keys, credentials, allowlist, storage or group.
	folder := e.folder(owner, "Plans")
	userID := ownerID(e, user)
	for _, who := range []string{userID, adminID} {
		if ue := e.share(owner, vars{"f": folder, "u": who, "p": "SHARE"}); len(ue) != 0 {
			t.Fatal(ue)
		}
	}
	r = e.do(user, `query($id: ID!) { node(id: $id) { ... on ProjectFolder { name members { user { email
		sshKeys { id } sftp { enabled credentials { login } } ipAllowlist storage { used } group { name } } } } } }`, vars{"id": folder})
	var parsed any
	if err := json.Unmarshal(r.Data, &parsed); err != nil {
		t.Fatal(err)
	}
	// Everyone else who has the folder: the owner (who made it) and the administrator.
	var others []string
	for i, m := range dig(parsed, "node.members").([]any) {
		if email := dig(m, "user.email"); email != nil && email != "user@acme.example" {
			for _, f := range []string{"sshKeys", "sftp.credentials", "ipAllowlist", "storage", "group"} {
				others = append(others, fmt.Sprintf("node.members.%d.user.%s", i, f))
			}
		}
	}
	if len(others) != 10 {
		t.Fatalf("members: %s %+v", r.Data, r.Errors)
	}
	data = forbiddenAt(t, "other users through a folder", r, others...)
	if dig(data, "node.name") != "Plans" {
		t.Errorf("folder: data %s", r.Data)
	}

	// Without the right to share, the folder's members are null with an
	// error, and the folder is still there.
	folder2 := e.folder(owner, "Reports")
	if ue := e.share(owner, vars{"f": folder2, "u": userID, "p": "READ"}); len(ue) != 0 {
		t.Fatal(ue)
	}
	r = e.do(user, `{ account { projectFolders { edges { node { name members { preset } } } } } }`, nil)
	data = forbiddenAt(t, "members of a folder shared READ", r, "account.projectFolders.edges.1.node.members")
	if dig(data, "account.projectFolders.edges.1.node.name") != "Reports" {
		t.Errorf("folders: data %s", r.Data)
	}

	// A user's staff-only root field nulls only itself.
	r = e.do(user, `{ viewer { __typename } accounts { edges { node { id } } } sftpModuleRequests { edges { node { id } } } }`, nil)
	data = forbiddenAt(t, "staff-only root fields", r, "accounts", "sftpModuleRequests")
	if dig(data, "viewer.__typename") != "UserViewer" {
		t.Errorf("root: data %s", r.Data)
	}
}
