package graph_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// folderShares asks for one page of a folder's shares.
const folderShares = `query($id: ID!, $n: Int, $a: String, $l: Int, $b: String) { node(id: $id) { ... on ProjectFolder { id
	shares(first: $n, after: $a, last: $l, before: $b) { edges { cursor node { preset sharedAt user { id } group { id } } }
		pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } } } }`

type sharesPage struct {
	Node struct {
		ID     string
		Shares *struct {
			Edges []struct {
				Cursor string
				Node   shareMember
			}
			PageInfo struct {
				HasNextPage, HasPreviousPage bool
				StartCursor, EndCursor       *string
			}
			TotalCount int
		}
	}
}

type shareMember struct {
	Preset   string
	SharedAt string
	User     *struct{ ID string }
	Group    *struct{ ID string }
}

// who is the user's or group's global ID.
func (m shareMember) who() string {
	if m.User != nil {
		return m.User.ID
	}
	if m.Group != nil {
		return m.Group.ID
	}
	return "nobody"
}

// bigFolder makes a folder of the seed's owner shared with every live user
// of the seed (the viewer with SHARE), the Team group, and a user deleted
// since; it returns the folder's global ID.
func bigFolder(e *env, s *sharingSeed) string {
	e.t.Helper()
	ctx := e.principal(s.owner)
	f, err := e.svc.Sharing.CreateProjectFolder(ctx, "Big")
	if err != nil {
		e.t.Fatal(err)
	}
	share := func(in sharing.ShareInput) {
		e.t.Helper()
		in.FolderID = f.ID
		if _, err := e.svc.Sharing.ShareProjectFolder(ctx, in); err != nil {
			e.t.Fatal(err)
		}
	}
	presets := policy.Presets()
	for i, u := range s.users {
		if i == 1 { // deleted by seedSharing
			continue
		}
		share(sharing.ShareInput{UserID: u, Preset: presets[i%4]})
		if i == 4 {
			share(sharing.ShareInput{GroupID: s.team, Preset: policy.PresetRead})
			share(sharing.ShareInput{UserID: s.viewerID, Preset: policy.PresetShare})
		}
	}
	// A share of a user deleted since is no member.
	share(sharing.ShareInput{UserID: s.users[len(s.users)-1], Preset: policy.PresetList})
	if _, err := e.svc.People.DeleteUser(ctx, s.users[len(s.users)-1], false); err != nil {
		e.t.Fatal(err)
	}
	return globalID("ProjectFolder", f.ID)
}

// sharesPageOf runs folderShares and returns the page (nil when the field
// is null).
func (e *env) sharesPageOf(token, folder string, v vars) *sharesPage {
	e.t.Helper()
	v["id"] = folder
	var out sharesPage
	e.mustDo(token, folderShares, v, &out)
	return &out
}

// Paging forward through a folder's shares, a few at a time, gives every
// share exactly once, oldest first, as the whole list (members) has them;
// paging backward gives the same in the same order. A share whose preset
// changes between pages keeps its place.
func TestFolderSharesPageThroughEveryShare(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := seedSharing(e, 13, 5)
	folder := bigFolder(e, s)

	var all struct {
		Node struct{ Members []shareMember }
	}
	e.mustDo(s.owner, `query($id: ID!) { node(id: $id) { ... on ProjectFolder { members { preset sharedAt user { id } group { id } } } } }`,
		vars{"id": folder}, &all)
	var want []string
	for _, m := range all.Node.Members {
		want = append(want, m.who())
	}
	// The owner, 11 live users, Team and the viewer; not the deleted users.
	if len(want) != 14 || want[0] != e.viewerID(s.owner) {
		t.Fatalf("members %q", want)
	}

	var got []string
	var after any
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatalf("still paging after %d pages: %q", pages, got)
		}
		p := e.sharesPageOf(s.owner, folder, vars{"n": 4, "a": after}).Node.Shares
		if p == nil {
			t.Fatal("shares is null")
		}
		if p.TotalCount != len(want) {
			t.Errorf("totalCount %d, want %d", p.TotalCount, len(want))
		}
		if p.PageInfo.HasPreviousPage != (after != nil) {
			t.Errorf("page %d: hasPreviousPage %v", pages, p.PageInfo.HasPreviousPage)
		}
		for i, ed := range p.Edges {
			got = append(got, ed.Node.who())
			if ed.Node.SharedAt == "" || ed.Node.Preset == "" {
				t.Errorf("edge %+v", ed)
			}
			if i == len(p.Edges)-1 && (p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor != ed.Cursor) {
				t.Errorf("endCursor %v, last edge's %q", p.PageInfo.EndCursor, ed.Cursor)
			}
		}
		if pages == 0 { // change a share already read and one still to come
			ctx := e.principal(s.owner)
			for _, u := range []string{s.users[0], s.users[10]} {
				if _, err := e.svc.Sharing.ShareProjectFolder(ctx, sharing.ShareInput{FolderID: localID(folder), UserID: u, Preset: policy.PresetWrite}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !p.PageInfo.HasNextPage {
			break
		}
		after = *p.PageInfo.EndCursor
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paging forward gave\n%q\nwant\n%q", got, want)
	}

	var back []string
	var before any
	for {
		p := e.sharesPageOf(s.owner, folder, vars{"l": 3, "b": before}).Node.Shares
		var page []string
		for _, ed := range p.Edges {
			page = append(page, ed.Node.who())
		}
		back = append(page, back...)
		if !p.PageInfo.HasPreviousPage {
			break
		}
		before = *p.PageInfo.StartCursor
	}
	if !slices.Equal(back, want) {
		t.Fatalf("paging backward gave\n%q\nwant\n%q", back, want)
	}
}

// shares has members' rights: owners, administrators and users who may
// share the folder see them; a user with a lesser share gets null with
// FORBIDDEN at the field, and the folder's other fields as usual.
func TestFolderSharesRights(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := seedSharing(e, 6, 5)
	folder := bigFolder(e, s)
	plainID, plain := e.user(s.owner, "plain@acme.example", "USER")
	if _, err := e.svc.Sharing.ShareProjectFolder(e.principal(s.owner), sharing.ShareInput{
		FolderID: localID(folder), UserID: localID(plainID), Preset: policy.PresetWrite}); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"owner": s.owner, "admin": s.admin, "user with SHARE": s.viewer} {
		p := e.sharesPageOf(token, folder, vars{"n": 2})
		if sh := p.Node.Shares; sh == nil || len(sh.Edges) != 2 || sh.TotalCount != 8 || !sh.PageInfo.HasNextPage {
			t.Errorf("%s: shares %+v", name, sh)
		}
	}

	r := e.do(plain, folderShares, vars{"id": folder, "n": 2})
	if len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" || fmt.Sprint(r.Errors[0].Path) != "[node shares]" {
		t.Fatalf("a user with WRITE: errors %+v", r.Errors)
	}
	var p sharesPage
	if err := jsonUnmarshal(r.Data, &p); err != nil {
		t.Fatal(err)
	}
	if p.Node.ID != folder || p.Node.Shares != nil {
		t.Fatalf("a user with WRITE: data %s", r.Data)
	}
	// The same on a page of folders: each row's error at its own path.
	r = e.do(plain, `{ account { projectFolders { edges { node { name shares { totalCount } } } } } }`, nil)
	if len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" || fmt.Sprint(r.Errors[0].Path) != "[account projectFolders edges 0 node shares]" {
		t.Fatalf("a user with WRITE, page of folders: errors %+v", r.Errors)
	}
}

// Bad page arguments are BAD_USER_INPUT on the argument at fault, at the
// field: first and last out of 1–200, both together, cursors that do not
// parse or are another list's.
func TestFolderSharesBadArguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := seedSharing(e, 5, 5)
	folder := bigFolder(e, s)
	var folders struct {
		Account struct {
			ProjectFolders struct{ PageInfo struct{ EndCursor string } }
		}
	}
	e.mustDo(s.owner, `{ account { projectFolders(first: 1) { pageInfo { endCursor } } } }`, nil, &folders)
	cases := []struct {
		v     vars
		field string
	}{
		{vars{"n": 0}, "first"},
		{vars{"n": -1}, "first"},
		{vars{"n": 201}, "first"},
		{vars{"l": 0}, "last"},
		{vars{"l": 201}, "last"},
		{vars{"n": 2, "l": 2}, "last"},
		{vars{"a": "not a cursor"}, "after"},
		{vars{"b": "bm90IGEgY3Vyc29y"}, "before"},
		{vars{"a": folders.Account.ProjectFolders.PageInfo.EndCursor}, "after"},
	}
	for _, c := range cases {
		c.v["id"] = folder
		err := e.mustFail(s.owner, folderShares, c.v, "BAD_USER_INPUT")
		if err.Extensions["field"] != c.field || fmt.Sprint(err.Path) != "[node shares]" {
			t.Errorf("%v: error %+v, want field %s at [node shares]", c.v, err, c.field)
		}
	}
}

// shares counts as a paged field in the operation's complexity: its
// selection once per item of its page (`first`, or 50 without one), before
// anything is read, however many shares the folders hold.
func TestFolderSharesCountAsPaged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	for _, q := range []string{
		`{ account { projectFolders(first: 200) { edges { node { shares(first: 20) { edges { node { user { name email } } } } } } } } }`,
		`{ account { projectFolders(first: 100) { edges { node { shares { edges { node { preset user { name } } } } } } } } }`,
	} {
		err := e.mustFail(owner, q, nil, "COMPLEXITY_LIMIT_EXCEEDED")
		if !strings.Contains(err.Message, "paged fields count once per item") {
			t.Errorf("%s: %q", q, err.Message)
		}
	}
	e.mustDo(owner, `{ account { projectFolders(first: 20) { edges { node { shares(first: 20) { edges { node { user { name email } } } } } } } } }`, nil, nil)
}
