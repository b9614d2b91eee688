package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// sharingSeed is an account whose users, groups and project folders have
// shares of every kind: folders shared with users directly and through a
// group (the rights are the union), with a deleted user (no member, no
// rights), folders only the role reaches, users with more folders than a
// page, groups with more members than a page.
type sharingSeed struct {
	owner, viewer, admin string   // tokens: the owner, a plain user of the Team group, an administrator
	viewerID, adminID    string   // local IDs
	users, folders       []string // local IDs, users without the three above
	team                 string   // the Team group's local ID
}

// principal returns the context of the token's principal, for calling the
// services directly.
func (e *env) principal(token string) context.Context {
	e.t.Helper()
	p, err := e.svc.People.Authenticate(context.Background(), token, netip.Addr{})
	if err != nil {
		e.t.Fatal(err)
	}
	return tenant.WithPrincipal(context.Background(), p)
}

// seedSharing makes an account with n users and m folders (at least 5 each).
func seedSharing(e *env, n, m int) *sharingSeed {
	e.t.Helper()
	s := &sharingSeed{}
	_, s.owner = e.account("Acme", "owner@acme.example")
	ctx := e.principal(s.owner)
	must := func(err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatal(err)
		}
	}
	team, err := e.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: "Team",
		Permissions: []policy.Permission{policy.SFTPMyFiles, policy.ShareProjectFolders}})
	must(err)
	s.team = team.ID
	s.viewerID, s.viewer = e.user(s.owner, "viewer@acme.example", "USER")
	s.adminID, s.admin = e.user(s.owner, "admin@acme.example", "ADMIN")
	s.viewerID, s.adminID = localID(s.viewerID), localID(s.adminID)
	_, _, err = e.svc.Sharing.MoveUser(ctx, s.viewerID, team.ID)
	must(err)
	for i := range n {
		in := people.CreateUserInput{Email: fmt.Sprintf("u%03d@acme.example", i), Name: fmt.Sprintf("User %03d", (i*7)%n)}
		if i%3 == 0 {
			in.GroupID = team.ID
		}
		u, err := e.svc.People.CreateUser(ctx, in)
		must(err)
		s.users = append(s.users, u.ID)
	}
	presets := policy.Presets()
	for i := range m {
		f, err := e.svc.Sharing.CreateProjectFolder(ctx, fmt.Sprintf("Folder %03d", (i*11)%m))
		must(err)
		s.folders = append(s.folders, f.ID)
		if i%5 == 4 {
			continue // shared with its creator only: the admin's rights come from the role
		}
		for j := range 3 { // three users each, so users have several folders
			_, err = e.svc.Sharing.ShareProjectFolder(ctx, sharing.ShareInput{FolderID: f.ID, UserID: s.users[(i+j*5)%n], Preset: presets[(i+j)%len(presets)]})
			must(err)
		}
		if i%2 == 0 {
			_, err = e.svc.Sharing.ShareProjectFolder(ctx, sharing.ShareInput{FolderID: f.ID, GroupID: team.ID, Preset: presets[i%4]})
			must(err)
		}
		if i%3 == 0 { // directly as LIST, through Team as more (or less)
			_, err = e.svc.Sharing.ShareProjectFolder(ctx, sharing.ShareInput{FolderID: f.ID, UserID: s.viewerID, Preset: policy.PresetList})
			must(err)
		}
	}
	// A deleted user's shares grant nothing and are no folder's members.
	_, err = e.svc.People.DeleteUser(ctx, s.users[1], false)
	must(err)
	return s
}

const folderPage = `query($n: Int!) { account { projectFolders(first: $n) { edges { node {
	id name myRights createdBy { name } members { preset sharedAt user { id name } group { id name } } } } } } }`

const userPage = `query($n: Int!, $f: Int, $a: String) { account { users(first: $n) { edges { node {
	id storage { used quota } sshKeys { user { id } }
	projectsSharedWithMe(first: $f, after: $a) { edges { cursor preset rights node { id name myRights createdBy { name }
		members { preset user { id } group { id } } } } pageInfo { hasNextPage endCursor } } } } } } }`

const folderSharesPage = `query($n: Int!, $f: Int, $a: String) { account { projectFolders(first: $n) { edges { node {
	id shares(first: $f, after: $a) { edges { cursor node { preset sharedAt user { id name } group { id name } } }
		pageInfo { hasNextPage hasPreviousPage endCursor } totalCount } } } } } }`

const groupPage = `query($n: Int!, $f: Int, $a: String) { account { groups(first: $n) { edges { node {
	id name memberCount members(first: $f, after: $a) { edges { cursor node { id name } } pageInfo { hasNextPage hasPreviousPage } } } } } } }`

// newCostEnv is newEnv for tests that count a request's statements: its
// permission cache trusts an account's policy as production's does while
// notifications arrive (policy.DefaultListeningMaxAge), and changes made
// through the services still apply at once. newEnv's, with no listener,
// trusts it for a second (policy.DefaultMaxAge): a request on a loaded
// machine then reads it again once for every second it takes, statements
// that grow with the machine's load, not with the page.
func newCostEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	enforcer, err := policy.New(e.svc.DB, policy.Options{MaxAge: policy.DefaultListeningMaxAge})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Sharing.Policy = enforcer
	return e
}

// cost runs query as token and returns how many statements it cost, the
// fewest of three runs: reads that happen once and not again within a
// minute (the account's policy into the cache, the session's last use,
// written at most once a minute) fall on one run only. Tests that compare
// costs use newCostEnv: with newEnv's cache a slow request reads the
// policy again.
func (e *env) cost(token, query string, v vars, rows func(json.RawMessage) int, want int) int64 {
	e.t.Helper()
	least := int64(-1)
	for range 3 {
		before := e.statementsSent()
		r := e.do(token, query, v)
		cost := e.statementsSent() - before
		for _, err := range r.Errors {
			// A plain user may not see who created a folder, nor the shares of
			// one they may not share: createdBy and shares are null with
			// FORBIDDEN (docs/GRAPHQL.md), loaded in the page's batch all the same.
			if err.code() != "FORBIDDEN" || len(err.Path) == 0 || (err.Path[len(err.Path)-1] != "createdBy" && err.Path[len(err.Path)-1] != "shares") {
				e.t.Fatalf("unexpected errors: %+v", r.Errors)
			}
		}
		if got := rows(r.Data); got != want {
			e.t.Fatalf("a page of %d rows has %d", want, got)
		}
		if least < 0 || cost < least {
			least = cost
		}
	}
	return least
}

func countEdges(path ...string) func(json.RawMessage) int {
	return func(data json.RawMessage) int {
		var v any
		_ = json.Unmarshal(data, &v)
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		return len(v.(map[string]any)["edges"].([]any))
	}
}

// A page of folders with the viewer's rights, members and creators, a page
// of users with the folders shared with them (each folder with its rights
// and members), their storage and their keys' users, and a page of groups
// with a page of members each (an owner's, and support staff's) cost the same
// number of statements whatever the page size: every per-row field is loaded
// for the whole page at once.
func TestPageCostsDoNotGrowWithPageSize(t *testing.T) {
	t.Parallel()
	e := newCostEnv(t)
	s := seedSharing(e, 40, 40)
	ctx := e.principal(s.owner)
	for i := range 5 { // more groups than the small page, each with members
		g, err := e.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: fmt.Sprintf("Crew %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range s.users[10+i*4 : 14+i*4] {
			if _, _, err := e.svc.Sharing.MoveUser(ctx, u, g.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The viewer may share every other folder: they see those folders' shares.
	for i := 1; i < len(s.folders); i += 2 {
		if _, err := e.svc.Sharing.ShareProjectFolder(ctx, sharing.ShareInput{FolderID: s.folders[i], UserID: s.viewerID, Preset: policy.PresetShare}); err != nil {
			t.Fatal(err)
		}
	}
	// A cursor of the shares of one folder continues every folder's shares.
	var first struct {
		Account struct {
			ProjectFolders struct {
				Edges []struct {
					Node struct {
						Shares struct{ PageInfo struct{ EndCursor string } }
					}
				}
			}
		}
	}
	e.mustDo(s.owner, `{ account { projectFolders(first: 1) { edges { node { shares(first: 1) { pageInfo { endCursor } } } } } } }`, nil, &first)
	sharesCursor := first.Account.ProjectFolders.Edges[0].Node.Shares.PageInfo.EndCursor
	pages := []struct {
		name, token, query string
		path               []string
		v                  vars
		small, large       int
	}{
		{"folders (owner)", s.owner, folderPage, []string{"account", "projectFolders"}, vars{}, 5, 31},
		{"folders (plain user)", s.viewer, `query($n: Int!) { account { projectFolders(first: $n) { edges { node { id myRights createdBy { name } } } } } }`,
			[]string{"account", "projectFolders"}, vars{}, 2, 7},
		{"folders with shares (owner)", s.owner, folderSharesPage, []string{"account", "projectFolders"}, vars{"f": 2}, 5, 31},
		{"folders with shares from a cursor (owner)", s.owner, folderSharesPage, []string{"account", "projectFolders"}, vars{"f": 2, "a": sharesCursor}, 5, 31},
		{"folders with shares (user who may share)", s.viewer, `query($n: Int!, $f: Int) { account { projectFolders(first: $n) { edges { node {
			id myRights shares(first: $f) { edges { node { preset user { id } group { id } } } } } } } } }`,
			[]string{"account", "projectFolders"}, vars{"f": 2}, 2, 7},
		{"users", s.owner, userPage, []string{"account", "users"}, vars{"f": 3}, 5, 31},
		{"groups", s.owner, groupPage, []string{"account", "groups"}, vars{"f": 2}, 2, 8},
		// Support staff read any account's groups with their members, in the staff scope.
		{"groups (staff)", e.staff("support@skiff.example"),
			strings.Replace(groupPage, "account {", fmt.Sprintf("account(id: %q) {", globalID("Account", e.accountOf(ctx))), 1),
			[]string{"account", "groups"}, vars{"f": 2}, 2, 8},
	}
	for _, p := range pages {
		v := maps.Clone(p.v)
		v["n"] = p.small
		small := e.cost(p.token, p.query, v, countEdges(p.path...), p.small)
		v["n"] = p.large
		large := e.cost(p.token, p.query, v, countEdges(p.path...), p.large)
		if small != large {
			t.Errorf("%s: a page of %d rows took %d statements, a page of %d took %d", p.name, p.small, small, p.large, large)
		} else {
			t.Logf("%s: %d statements for %d or %d rows", p.name, small, p.small, p.large)
		}
	}
	if n := openTransactions(t, e); n != 0 {
		t.Fatalf("%d transactions still open after the requests", n)
	}
}

// The batched fields answer what the one-row services answer, row by row:
// the viewer's rights (against RightsIn, Casbin's decision for each folder
// and right) for the owner, an administrator the folders are not shared
// with and a user with direct and group shares; every folder's members;
// each user's page of shared folders and each group's page of members, with
// a cursor from another row's page (every row continues after it in its own
// list), checked against the slice of the row's full list.
func TestBatchedFieldsMatchOneRowLoads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := seedSharing(e, 12, 15)

	type member struct {
		Preset   string
		SharedAt string
		User     *struct{ ID, Name string }
		Group    *struct{ ID, Name string }
	}
	for _, token := range []string{s.owner, s.admin, s.viewer} {
		var out struct {
			Account struct {
				ProjectFolders struct {
					Edges []struct {
						Node struct {
							ID, Name string
							MyRights []string
						}
					}
				}
			}
		}
		e.mustDo(token, `{ account { projectFolders(first: 200) { edges { node { id name myRights } } } } }`, nil, &out)
		ctx := e.principal(token)
		seen := 0
		for _, ed := range out.Account.ProjectFolders.Edges {
			seen++
			want, err := e.svc.Sharing.MyRightsIn(ctx, localID(ed.Node.ID))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ed.Node.MyRights, rightNames(want)) {
				t.Errorf("folder %s: myRights %v, RightsIn %v", ed.Node.Name, ed.Node.MyRights, want)
			}
		}
		if token != s.viewer && seen != len(s.folders) {
			t.Fatalf("%d folders, want %d", seen, len(s.folders))
		}
	}

	var folders struct {
		Account struct {
			ProjectFolders struct {
				Edges []struct {
					Node struct {
						ID, Name string
						Members  []member
					}
				}
			}
		}
	}
	e.mustDo(s.owner, `{ account { projectFolders(first: 200) { edges { node { id name members { preset sharedAt user { id name } group { id name } } } } } } }`, nil, &folders)
	ctx := e.principal(s.owner)
	deleted := globalID("User", s.users[1])
	for _, ed := range folders.Account.ProjectFolders.Edges {
		want, err := e.svc.Sharing.FolderMembers(ctx, localID(ed.Node.ID))
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != len(ed.Node.Members) {
			t.Fatalf("folder %s: %d members, FolderMembers %d", ed.Node.Name, len(ed.Node.Members), len(want))
		}
		for i, m := range ed.Node.Members {
			w := want[i]
			ok := m.Preset == string(w.Preset) && (m.User == nil) == (w.User == nil) && (m.Group == nil) == (w.Group == nil)
			if ok && m.User != nil {
				ok = localID(m.User.ID) == w.User.ID && m.User.Name == w.User.Name && m.User.ID != deleted
			}
			if ok && m.Group != nil {
				ok = localID(m.Group.ID) == w.Group.ID
			}
			if !ok {
				t.Errorf("folder %s, member %d: %+v, FolderMembers %+v", ed.Node.Name, i, m, w)
			}
		}
	}

	// Users' shared folders: the first page of user A sets the cursor that
	// every user's page continues after.
	full := map[string][]string{} // user → folder IDs, the whole list
	rightsOf := map[string]map[string]*sharing.SharedProject{}
	var cursor string
	everyone, err := e.svc.People.Users(ctx, e.accountOf(ctx), people.UserFilter{}, tenant.Order{}, tenant.Page{First: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range everyone.Items {
		u := x.ID
		c, err := e.svc.Sharing.ProjectsSharedWith(ctx, u, tenant.Order{}, tenant.Page{First: 200})
		if err != nil {
			t.Fatal(err)
		}
		rightsOf[u] = map[string]*sharing.SharedProject{}
		for i, p := range c.Items {
			full[u] = append(full[u], p.Folder.ID)
			rightsOf[u][p.Folder.ID] = p
			if u == s.users[0] && i == 1 {
				cursor = c.Cursors[i]
			}
		}
	}
	if cursor == "" {
		t.Fatal("the seed gives the first user fewer than two folders")
	}
	for _, after := range []any{nil, cursor} {
		var users struct {
			Account struct {
				Users struct {
					Edges []struct {
						Node struct {
							ID                   string
							ProjectsSharedWithMe struct {
								Edges []struct {
									Preset string
									Rights []string
									Node   struct{ ID, Name string }
								}
								PageInfo struct{ HasNextPage bool }
							}
						}
					}
				}
			}
		}
		e.mustDo(s.owner, `query($a: String) { account { users(first: 200) { edges { node { id
			projectsSharedWithMe(first: 2, after: $a) { edges { preset rights node { id name } } pageInfo { hasNextPage } } } } } } }`,
			vars{"a": after}, &users)
		checked := 0
		for _, ed := range users.Account.Users.Edges {
			u := localID(ed.Node.ID)
			want := slices.Clone(full[u])
			if after != nil { // the folders after the cursor's (name, id) in this user's list
				want = slices.DeleteFunc(want, func(id string) bool { return !afterCursor(t, e, ctx, id, cursor) })
			}
			got := ed.Node.ProjectsSharedWithMe
			wantNext := len(want) > 2
			want = want[:min(2, len(want))]
			var gotIDs []string
			for _, p := range got.Edges {
				gotIDs = append(gotIDs, localID(p.Node.ID))
				if w := rightsOf[u][localID(p.Node.ID)]; p.Preset != string(w.Preset) || !slices.Equal(p.Rights, rightNames(w.Rights)) {
					t.Errorf("user %s, folder %s: %s %v, ProjectsSharedWith %s %v", u, p.Node.Name, p.Preset, p.Rights, w.Preset, w.Rights)
				}
			}
			if !slices.Equal(gotIDs, want) || got.PageInfo.HasNextPage != wantNext {
				t.Errorf("user %s after %v: folders %v (next %v), want %v (next %v)", u, after, gotIDs, got.PageInfo.HasNextPage, want, wantNext)
			}
			checked++
		}
		if checked < 10 {
			t.Fatalf("checked %d users", checked)
		}
	}
}

// Each group's page of members, after a cursor taken from another group's
// list, is the slice of its full list after that cursor, for the account's
// owner and for support staff.
func TestBatchedGroupMembersMatchOneRowLoads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := seedSharing(e, 12, 5)
	ctx := e.principal(s.owner)
	all, err := e.svc.Sharing.Groups(ctx, e.accountOf(ctx), tenant.Order{}, tenant.Page{First: 200})
	if err != nil {
		t.Fatal(err)
	}
	full := map[string][]*tenant.User{}
	cursors := map[string][]string{}
	for _, g := range all.Items {
		c, err := e.svc.Sharing.GroupMembers(ctx, g.ID, tenant.Order{}, tenant.Page{First: 200})
		if err != nil {
			t.Fatal(err)
		}
		full[g.ID], cursors[g.ID] = c.Items, c.Cursors
	}
	team := full[s.team]
	if len(team) < 4 {
		t.Fatalf("Team has %d members", len(team))
	}
	cursor := cursors[s.team][1]
	staff := e.staff("support@skiff.example") // support staff read them as the owner does
	acct := globalID("Account", e.accountOf(ctx))
	for _, tc := range []struct {
		token string
		after any
	}{{s.owner, nil}, {s.owner, cursor}, {staff, nil}, {staff, cursor}} {
		after := tc.after
		var out struct {
			Account struct {
				Groups struct {
					Edges []struct {
						Node struct {
							ID      string
							Members struct {
								Edges    []struct{ Node struct{ ID string } }
								PageInfo struct{ HasNextPage, HasPreviousPage bool }
							}
						}
					}
				}
			}
		}
		e.mustDo(tc.token, `query($acct: ID, $a: String) { account(id: $acct) { groups(first: 50) { edges { node { id
			members(first: 2, after: $a) { edges { node { id } } pageInfo { hasNextPage hasPreviousPage } } } } } } }`,
			vars{"acct": acct, "a": after}, &out)
		if len(out.Account.Groups.Edges) != len(all.Items) {
			t.Fatalf("%d groups, want %d", len(out.Account.Groups.Edges), len(all.Items))
		}
		for _, ed := range out.Account.Groups.Edges {
			want := slices.Clone(full[localID(ed.Node.ID)])
			// Going forward, hasPreviousPage tells whether members lie at or before the cursor.
			wantPrev := false
			if after != nil {
				key, id, _ := tenant.DecodeCursor(cursor)
				want = slices.DeleteFunc(want, func(u *tenant.User) bool {
					name := strings.ToLower(u.Name)
					return name < key || (name == key && u.ID <= id)
				})
				wantPrev = len(want) < len(full[localID(ed.Node.ID)])
			}
			wantNext := len(want) > 2
			want = want[:min(2, len(want))]
			var got, wantIDs []string
			for _, m := range ed.Node.Members.Edges {
				got = append(got, localID(m.Node.ID))
			}
			for _, u := range want {
				wantIDs = append(wantIDs, u.ID)
			}
			pi := ed.Node.Members.PageInfo
			if !slices.Equal(got, wantIDs) || pi.HasNextPage != wantNext || pi.HasPreviousPage != wantPrev {
				t.Errorf("group %s after %v: members %v %+v, want %v (next %v)", ed.Node.ID, after, got, pi, wantIDs, wantNext)
			}
		}
	}
}

func (e *env) accountOf(ctx context.Context) string { return tenant.PrincipalFrom(ctx).AccountID }

// afterCursor reports whether a folder comes after the cursor in name order.
func afterCursor(t *testing.T, e *env, ctx context.Context, folderID, cursor string) bool {
	t.Helper()
	f, err := e.svc.Sharing.ProjectFolder(ctx, folderID)
	if err != nil {
		t.Fatal(err)
	}
	key, id, err := tenant.DecodeCursor(cursor)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ToLower(f.Name)
	return name > key || (name == key && f.ID > id)
}

func rightNames(rights []policy.Right) []string {
	out := []string{}
	for _, r := range rights {
		out = append(out, string(r))
	}
	return out
}

// Loaders cache what they load for a request, but each mutation of a request
// gets loaders of its own: the second share's payload shows the folder's
// members after the second change, not what the first payload loaded.
func TestEachMutationLoadsAfresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	userID, _ := e.user(owner, "user@acme.example", "USER")
	folderID := e.folder(owner, "Plans")
	var out struct {
		First, Second struct {
			ProjectFolder struct {
				Members []struct {
					Preset string
					User   *struct{ ID string }
				}
			}
		}
	}
	e.mustDo(owner, `mutation($f: ID!, $u: ID!) {
		first: shareProjectFolder(input: {folderId: $f, userId: $u, preset: READ}) { projectFolder { members { preset user { id } } } }
		second: shareProjectFolder(input: {folderId: $f, userId: $u, preset: WRITE}) { projectFolder { members { preset user { id } } } } }`,
		vars{"f": folderID, "u": userID}, &out)
	presetOf := func(members []struct {
		Preset string
		User   *struct{ ID string }
	}) string {
		for _, m := range members {
			if m.User != nil && m.User.ID == userID {
				return m.Preset
			}
		}
		return ""
	}
	if a, b := presetOf(out.First.ProjectFolder.Members), presetOf(out.Second.ProjectFolder.Members); a != "READ" || b != "WRITE" {
		t.Fatalf("the user's share after each mutation: %s, %s; want READ, WRITE", a, b)
	}
}
