package graph_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

const (
	createFolder  = `mutation($n: String!) { createProjectFolder(input: {name: $n}) { projectFolder { id name myRights } userErrors { field code message } } }`
	renameFolder  = `mutation($id: ID!, $n: String!) { renameProjectFolder(input: {id: $id, name: $n}) { projectFolder { name } userErrors { field code message } } }`
	deleteFolder  = `mutation($id: ID!) { deleteProjectFolder(input: {id: $id}) { deletedProjectFolderId userErrors { field code message } } }`
	shareFolder   = `mutation($f: ID!, $u: ID, $g: ID, $p: SharePreset!) { shareProjectFolder(input: {folderId: $f, userId: $u, groupId: $g, preset: $p}) { projectFolder { id } userErrors { field code message } } }`
	unshareFolder = `mutation($f: ID!, $u: ID, $g: ID) { unshareProjectFolder(input: {folderId: $f, userId: $u, groupId: $g}) { projectFolder { id } userErrors { field code message } } }`
)

// folder creates a project folder as token and returns its ID.
func (e *env) folder(token, name string) string {
	e.t.Helper()
	var out struct {
		CreateProjectFolder struct {
			ProjectFolder *struct{ ID string }
			UserErrors    []userError
		}
	}
	e.mustDo(token, createFolder, vars{"n": name}, &out)
	if out.CreateProjectFolder.ProjectFolder == nil {
		e.t.Fatalf("createProjectFolder %s: %+v", name, out.CreateProjectFolder.UserErrors)
	}
	return out.CreateProjectFolder.ProjectFolder.ID
}

// share runs shareProjectFolder as token and returns its user errors.
func (e *env) share(token string, v vars) []userError {
	e.t.Helper()
	var out struct {
		ShareProjectFolder struct{ UserErrors []userError }
	}
	e.mustDo(token, shareFolder, v, &out)
	return out.ShareProjectFolder.UserErrors
}

type sharedProjects struct {
	Viewer struct {
		User struct {
			ID    string
			Group struct {
				Name   string
				Jailed bool
			}
			ProjectsSharedWithMe struct {
				Edges []struct {
					Preset string
					Rights []string
					Node   struct {
						Name      string
						CreatedBy *struct{ Email string }
					}
				}
			}
		}
	}
}

const mySharedProjects = `{ viewer { ... on UserViewer { user { id group { name jailed }
	projectsSharedWithMe { edges { preset rights node { name createdBy { email } } } } } } } }`

// The "done when", as an admin client does it: make a user jailed
// and share a project folder with them as READ.
func TestJailAUserAndShareAFolderAsRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	jillID, jill := e.user(owner, "jill@acme.example", "USER")
	jailed := e.groups(owner)["Jailed Users"]
	e.setUserGroup(owner, jillID, jailed.ID)
	folderID := e.folder(owner, "Deliverables")
	e.folder(owner, "Internal")
	if errs := e.share(owner, vars{"f": folderID, "u": jillID, "p": "READ"}); len(errs) != 0 {
		t.Fatalf("share: %+v", errs)
	}

	var got sharedProjects
	// Jill may not see who created it (users see only themselves): null, with
	// a FORBIDDEN error at the field.
	r := e.do(jill, mySharedProjects, nil)
	if len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" ||
		fmt.Sprint(r.Errors[0].Path) != "[viewer user projectsSharedWithMe edges 0 node createdBy]" {
		t.Fatalf("Jill's projects: errors %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, &got); err != nil {
		t.Fatal(err)
	}
	u := got.Viewer.User
	if u.Group.Name != "Jailed Users" || !u.Group.Jailed {
		t.Errorf("Jill's group = %+v", u.Group)
	}
	edges := u.ProjectsSharedWithMe.Edges
	if len(edges) != 1 || edges[0].Node.Name != "Deliverables" || edges[0].Preset != "READ" ||
		!slices.Equal(edges[0].Rights, []string{"LIST", "DOWNLOAD"}) {
		t.Fatalf("Jill's projects = %+v", edges)
	}
	// She may not share it on.
	if edges[0].Node.CreatedBy != nil {
		t.Errorf("a plain user sees the creator %+v", edges[0].Node.CreatedBy)
	}
	e.mustFail(jill, shareFolder, vars{"f": folderID, "u": jillID, "p": "WRITE"}, "FORBIDDEN")
	e.mustFail(jill, createFolder, vars{"n": "Jill's"}, "FORBIDDEN")
	e.mustFail(jill, `query($id: ID!) { node(id: $id) { ... on ProjectFolder { members { preset } } } }`, vars{"id": folderID}, "FORBIDDEN")

	// The owner sees the members and Jill's projects.
	var members struct {
		Node struct {
			CreatedBy *struct{ Email string }
			Members   []struct {
				Preset string
				User   *struct{ Email string }
			}
		}
	}
	e.mustDo(owner, `query($id: ID!) { node(id: $id) { ... on ProjectFolder { createdBy { email } members { preset user { email } } } } }`, vars{"id": folderID}, &members)
	if c := members.Node.CreatedBy; c == nil || c.Email != "owner@acme.example" {
		t.Errorf("the owner sees the creator as %+v", c)
	}
	var list []string
	for _, m := range members.Node.Members {
		list = append(list, m.User.Email+" "+m.Preset)
	}
	if want := []string{"owner@acme.example OWNER", "jill@acme.example READ"}; !slices.Equal(list, want) {
		t.Errorf("members = %q, want %q", list, want)
	}
	var hers struct {
		Node struct {
			ProjectsSharedWithMe struct{ Edges []struct{ Preset string } }
		}
	}
	e.mustDo(owner, `query($id: ID!) { node(id: $id) { ... on User { projectsSharedWithMe { edges { preset } } } } }`, vars{"id": jillID}, &hers)
	if len(hers.Node.ProjectsSharedWithMe.Edges) != 1 {
		t.Errorf("the owner sees Jill's projects as %+v", hers)
	}
}

func TestProjectFolderRoleBoundaries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	readerID, reader := e.user(owner, "reader@acme.example", "USER")
	_, other := e.user(owner, "other@acme.example", "USER")
	f := e.folder(owner, "Plans")
	if errs := e.share(owner, vars{"f": f, "u": readerID, "p": "READ"}); len(errs) != 0 {
		t.Fatal(errs)
	}

	// Bad names and bad share input are user errors.
	var created struct {
		CreateProjectFolder struct{ UserErrors []userError }
	}
	e.mustDo(owner, createFolder, vars{"n": "a/b"}, &created)
	wantUserError(t, "a name with a slash", created.CreateProjectFolder.UserErrors, "INVALID", "name")
	wantUserError(t, "no target", e.share(owner, vars{"f": f, "p": "READ"}), "INVALID", "userId")
	wantUserError(t, "two targets", e.share(owner, vars{"f": f, "u": readerID, "g": e.groups(owner)["Pro"].ID, "p": "READ"}), "INVALID", "userId")
	wantUserError(t, "the last owner stepping down", e.share(owner, vars{"f": f, "u": ownerID(e, owner), "p": "SHARE"}), "CONFLICT", "preset")

	// Those without a right in the folder do not see it; READ may not change it.
	e.mustFail(other, renameFolder, vars{"id": f, "n": "Mine"}, "NOT_FOUND")
	e.mustFail(other, shareFolder, vars{"f": f, "u": readerID, "p": "WRITE"}, "NOT_FOUND")
	e.mustFail(reader, renameFolder, vars{"id": f, "n": "Mine"}, "FORBIDDEN")
	e.mustFail(reader, deleteFolder, vars{"id": f}, "FORBIDDEN")
	e.mustFail(reader, unshareFolder, vars{"f": f, "u": readerID}, "FORBIDDEN")
	var listed struct {
		Account struct {
			ProjectFolders struct {
				Edges []struct{ Node struct{ Name string } }
			}
		}
	}
	e.mustDo(other, `{ account { projectFolders { edges { node { name } } } } }`, nil, &listed)
	if len(listed.Account.ProjectFolders.Edges) != 0 {
		t.Errorf("a user sees folders not shared with them: %+v", listed)
	}

	// Administrators manage every folder of the account.
	var renamed struct {
		RenameProjectFolder struct {
			ProjectFolder *struct{ Name string }
			UserErrors    []userError
		}
	}
	e.mustDo(admin, renameFolder, vars{"id": f, "n": "Plans 2026"}, &renamed)
	if renamed.RenameProjectFolder.ProjectFolder == nil || renamed.RenameProjectFolder.ProjectFolder.Name != "Plans 2026" {
		t.Errorf("an admin renaming: %+v", renamed.RenameProjectFolder)
	}
	var unshared struct {
		UnshareProjectFolder struct{ UserErrors []userError }
	}
	e.mustDo(admin, unshareFolder, vars{"f": f, "u": readerID}, &unshared)
	if len(unshared.UnshareProjectFolder.UserErrors) != 0 {
		t.Errorf("an admin unsharing: %+v", unshared)
	}
	e.mustDo(admin, `{ account { projectFolders { edges { node { name } } } } }`, nil, &listed)
	if len(listed.Account.ProjectFolders.Edges) != 1 {
		t.Errorf("an admin's folders = %+v", listed)
	}
	var deleted struct {
		DeleteProjectFolder struct{ DeletedProjectFolderID *string }
	}
	e.mustDo(admin, deleteFolder, vars{"id": f}, &deleted)
	if deleted.DeleteProjectFolder.DeletedProjectFolderID == nil || *deleted.DeleteProjectFolder.DeletedProjectFolderID != f {
		t.Errorf("deleteProjectFolder = %+v", deleted)
	}
	e.mustFail(owner, renameFolder, vars{"id": f, "n": "Back"}, "NOT_FOUND")
}

func ownerID(e *env, token string) string {
	e.t.Helper()
	var me struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(token, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &me)
	return me.Viewer.User.ID
}

func TestProjectFoldersOfAnotherAccountAreNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	umaID, _ := e.user(owner, "uma@acme.example", "USER")
	ours := e.folder(owner, "Plans")
	pro := e.groups(owner)["Pro"].ID
	_, gus := e.account("Globex", "owner@globex.example")
	theirs := e.folder(gus, "Theirs")

	e.mustFail(gus, renameFolder, vars{"id": ours, "n": "Hijacked"}, "NOT_FOUND")
	e.mustFail(gus, deleteFolder, vars{"id": ours}, "NOT_FOUND")
	e.mustFail(gus, shareFolder, vars{"f": ours, "u": ownerID(e, gus), "p": "OWNER"}, "NOT_FOUND")
	e.mustFail(gus, unshareFolder, vars{"f": ours, "u": ownerID(e, owner)}, "NOT_FOUND")
	e.mustFail(gus, shareFolder, vars{"f": theirs, "u": umaID, "p": "READ"}, "NOT_FOUND")
	e.mustFail(gus, shareFolder, vars{"f": theirs, "g": pro, "p": "READ"}, "NOT_FOUND")
	e.mustFail(gus, shareFolder, vars{"f": umaID, "u": umaID, "p": "READ"}, "NOT_FOUND")
	for _, id := range []string{ours, umaID} {
		var node struct{ Node *struct{ ID string } }
		e.mustDo(gus, `query($id: ID!) { node(id: $id) { id } }`, vars{"id": id}, &node)
		if node.Node != nil {
			t.Errorf("another account's %s is a node", id)
		}
	}
}

// A user who sees a folder's members (SHARE) sees the other members' login
// times as null with FORBIDDEN at each field, as the other fields only the
// user and the administrators see: never a null that reads as "never
// logged in". Their own, and the owner's view of everyone's, are the times.
func TestMembersLoginTimesAreForbiddenToOtherUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	carolID, carol := e.user(owner, "carol@acme.example", "USER")
	folderID := e.folder(owner, "Shared")
	if errs := e.share(owner, vars{"f": folderID, "u": carolID, "p": "SHARE"}); len(errs) != 0 {
		t.Fatalf("share: %+v", errs)
	}
	const q = `query($id: ID!) { node(id: $id) { ... on ProjectFolder { members { user { email lastLoginAt lastApiLoginAt lastSftpLoginAt } } } } }`
	type member struct {
		User struct {
			Email                                        string
			LastLoginAt, LastAPILoginAt, LastSftpLoginAt *string
		}
	}
	var got struct{ Node struct{ Members []member } }

	r := e.do(carol, q, vars{"id": folderID})
	if err := json.Unmarshal(r.Data, &got); err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{}
	for _, x := range r.Errors {
		if x.code() != "FORBIDDEN" {
			t.Errorf("error %+v; want only FORBIDDEN", x)
		}
		forbidden[fmt.Sprint(x.Path)] = true
	}
	for i, m := range got.Node.Members {
		for _, f := range []string{"lastLoginAt", "lastApiLoginAt", "lastSftpLoginAt"} {
			path := fmt.Sprintf("[node members %d user %s]", i, f)
			switch own := m.User.Email == "carol@acme.example"; {
			case own && forbidden[path]:
				t.Errorf("Carol may not see her own %s", f)
			case !own && !forbidden[path]:
				t.Errorf("Carol sees %s's %s with no FORBIDDEN error", m.User.Email, f)
			}
		}
		if m.User.Email == "carol@acme.example" && m.User.LastAPILoginAt == nil {
			t.Error("Carol's own lastApiLoginAt is null; she logged in")
		}
	}
	if len(got.Node.Members) != 2 {
		t.Fatalf("members %+v", got.Node.Members)
	}

	got.Node.Members = nil
	e.mustDo(owner, q, vars{"id": folderID}, &got)
	for _, m := range got.Node.Members {
		if m.User.LastLoginAt == nil {
			t.Errorf("the owner sees %s's lastLoginAt as null; they logged in", m.User.Email)
		}
	}
}
