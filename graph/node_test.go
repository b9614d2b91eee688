package graph_test

import (
	"sort"
	"testing"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/graph/generated"
	"github.com/skiffhq/skiff/internal/testkit"
)

// Every type that implements Node resolves through node(id:) for someone
// who may see it, and is null, like a missing ID, for another account.
func TestNodeResolvesEveryNodeType(t *testing.T) {
	e := newEnv(t)
	acme, owner := e.account("Acme", "owner@acme.example")
	_, other := e.account("Other", "owner@other.example")
	staff := e.staff("support@skiff.example")

	// One of each: a user without a password gets an invitation (a
	// notification), every change an audit event.
	uma, _ := e.user(owner, "uma@acme.example", "USER")
	e.mustDo(owner, `mutation { createUser(input: {email: "ivy@acme.example", name: "Ivy"}) { user { id } } }`, nil, nil)
	e.mustDo(owner, `mutation { createContact(input: {email: "c@x.example", name: "Cy"}) { contact { id } } }`, nil, nil)
	e.mustDo(owner, `mutation { createGroup(input: {name: "Crew", permissions: []}) { group { id } } }`, nil, nil)
	e.mustDo(owner, `mutation { createProjectFolder(input: {name: "Plans"}) { projectFolder { id } } }`, nil, nil)
	e.mustDo(owner, `mutation($k: String!) { addSshKey(input: {title: "laptop", publicKey: $k}) { sshKey { id } } }`,
		vars{"k": testkit.AuthorizedKey(testkit.Ed25519Key(t), "me@laptop")}, nil)
	e.mustDo(owner, `mutation { requestSftpModule(input: {message: "please"}) { request { id } } }`, nil, nil)
	e.mustDo(owner, `mutation { requestDedicatedIp(input: {message: "please"}) { request { id } } }`, nil, nil)

	var acct struct {
		Viewer struct {
			Account struct {
				ID             string
				Users          conn
				Contacts       conn
				Groups         conn
				ProjectFolders conn
				Notifications  conn
				AuditEvents    conn
			}
			User struct{ SSHKeys []struct{ ID string } }
		}
	}
	e.mustDo(owner, `{ viewer { ... on UserViewer {
		account { id users { edges { node { id } } } contacts { edges { node { id } } } groups { edges { node { id } } }
			projectFolders { edges { node { id } } } notifications { edges { node { id } } } auditEvents { edges { node { id } } } }
		user { sshKeys { id } } } } }`, nil, &acct)
	var st struct {
		Viewer              struct{ Staff struct{ ID string } }
		SftpModuleRequests  conn
		DedicatedIpRequests conn
	}
	e.mustDo(staff, `{ viewer { ... on StaffViewer { staff { id } } } sftpModuleRequests { edges { node { id } } }
		dedicatedIpRequests { edges { node { id } } } }`, nil, &st)

	a := acct.Viewer.Account
	type sample struct{ id, token string }
	samples := map[string]sample{
		"Account":            {a.ID, owner},
		"User":               {a.Users.first(t, "users"), owner},
		"Contact":            {a.Contacts.first(t, "contacts"), owner},
		"Group":              {a.Groups.first(t, "groups"), owner},
		"ProjectFolder":      {a.ProjectFolders.first(t, "project folders"), owner},
		"Notification":       {a.Notifications.first(t, "notifications"), owner},
		"AuditEvent":         {a.AuditEvents.first(t, "audit events"), owner},
		"Staff":              {st.Viewer.Staff.ID, staff},
		"SftpModuleRequest":  {st.SftpModuleRequests.first(t, "module requests"), staff},
		"DedicatedIpRequest": {st.DedicatedIpRequests.first(t, "dedicated IP requests"), staff},
	}
	if len(acct.Viewer.User.SSHKeys) == 0 {
		t.Fatal("the owner has no SSH key")
	}
	samples["SshKey"] = sample{acct.Viewer.User.SSHKeys[0].ID, owner}
	samples["ApiSession"] = sample{e.apiSessions(owner)[0].ID, owner}
	samples["SftpSession"] = sample{globalID("SftpSession", e.liveSftpSession(acme, localID(uma)).ID), owner}

	schema := generated.NewExecutableSchema(generated.Config{Resolvers: &graph.Resolver{}}).Schema()
	var types []string
	for _, def := range schema.GetPossibleTypes(schema.Types["Node"]) {
		types = append(types, def.Name)
	}
	sort.Strings(types)
	if len(types) < 10 {
		t.Fatalf("only %d Node types found: %v", len(types), types)
	}
	for _, typ := range types {
		s, ok := samples[typ]
		if !ok {
			t.Errorf("%s implements Node but the test has no sample of it: add one", typ)
			continue
		}
		var got struct {
			Node *struct{ Typename, ID string }
		}
		q := `query($id: ID!) { node(id: $id) { typename: __typename id } }`
		e.mustDo(s.token, q, vars{"id": s.id}, &got)
		if got.Node == nil || got.Node.Typename != typ || got.Node.ID != s.id {
			t.Errorf("node(%s) = %+v, want the %s", s.id, got.Node, typ)
		}
		got.Node = nil
		e.mustDo(other, q, vars{"id": s.id}, &got)
		if got.Node != nil {
			t.Errorf("another account's owner sees %s %s", typ, s.id)
		}
	}
}

// conn is a connection's IDs as the test reads them.
type conn struct {
	Edges []struct{ Node struct{ ID string } }
}

func (c conn) first(t *testing.T, what string) string {
	t.Helper()
	if len(c.Edges) == 0 {
		t.Fatalf("no %s", what)
	}
	return c.Edges[0].Node.ID
}
