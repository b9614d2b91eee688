package graph_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
)

// connCase is one connection as a screen reads it: query selects the
// connection (at path in the data) with the variables $first, $after, $last,
// $before and $orderBy, its nodes with the fields the orders sort by.
type connCase struct {
	name   string
	token  string
	query  string
	path   []string
	vars   vars // more variables, e.g. the group's ID
	total  int  // the whole list's size
	orders []connOrder
}

// connOrder is one order of a connection: the orderBy argument (nil for the
// default) and the key a node sorts by, as a string that compares in the
// order's direction's sense when desc is false.
type connOrder struct {
	orderBy map[string]any
	desc    bool
	key     func(node map[string]any) string
}

type connPageInfo struct {
	HasNextPage, HasPreviousPage bool
	StartCursor, EndCursor       *string
}

type connPage struct {
	Edges []struct {
		Cursor string
		Node   map[string]any
	}
	PageInfo   connPageInfo
	TotalCount int
}

// page reads one page of c.
func (c connCase) page(e *env, orderBy map[string]any, v vars) connPage {
	e.t.Helper()
	all := vars{}
	if orderBy != nil {
		all["orderBy"] = orderBy
	}
	for k, x := range c.vars {
		all[k] = x
	}
	for k, x := range v {
		all[k] = x
	}
	var data map[string]json.RawMessage
	e.mustDo(c.token, c.query, all, &data)
	raw := data[c.path[0]]
	for _, p := range c.path[1:] {
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(raw, &inner); err != nil {
			e.t.Fatalf("%s: %v in %s", c.name, err, raw)
		}
		raw = inner[p]
	}
	var page connPage
	if err := json.Unmarshal(raw, &page); err != nil {
		e.t.Fatalf("%s: %v in %s", c.name, err, raw)
	}
	return page
}

func lowerField(name string) func(map[string]any) string {
	return func(n map[string]any) string { return strings.ToLower(fmt.Sprint(n[name])) }
}

// timeField is a time field as a string that sorts as the time does.
func timeField(name string) func(map[string]any) string {
	return func(n map[string]any) string {
		t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(n[name]))
		if err != nil {
			return "bad time " + fmt.Sprint(n[name])
		}
		return fmt.Sprintf("%020d", t.UnixNano())
	}
}

// orNever is key, or never for a node whose field is null: a key that
// sorts after every time ("~") or, in a descending order, before every time ("").
func orNever(key func(map[string]any) string, never string) func(map[string]any) string {
	return func(n map[string]any) string {
		if n["lastLoginAt"] == nil {
			return never
		}
		return key(n)
	}
}

// walk pages through c in one order forward, then backward, size items at a
// time, and checks both walks: the same items in the same order, no item
// twice, sorted by the order's key with ties by ID, page info as the Relay
// spec has it, and totalCount on every page. It returns the nodes in order.
func (c connCase) walk(t *testing.T, e *env, o connOrder, size int) []map[string]any {
	t.Helper()
	var forward []map[string]any
	var cursors []string
	after := any(nil)
	for n := 0; ; n++ {
		p := c.page(e, o.orderBy, vars{"first": size, "after": after})
		if p.TotalCount != c.total {
			t.Fatalf("%s %v: totalCount %d, want %d", c.name, o.orderBy, p.TotalCount, c.total)
		}
		if p.PageInfo.HasPreviousPage != (n > 0) {
			t.Fatalf("%s %v forward page %d: hasPreviousPage %v", c.name, o.orderBy, n, p.PageInfo.HasPreviousPage)
		}
		checkEnds(t, c.name, p)
		for _, ed := range p.Edges {
			forward = append(forward, ed.Node)
			cursors = append(cursors, ed.Cursor)
		}
		if len(p.Edges) > size || n > c.total {
			t.Fatalf("%s: page %d of %d items (asked %d)", c.name, n, len(p.Edges), size)
		}
		if !p.PageInfo.HasNextPage {
			break
		}
		after = *p.PageInfo.EndCursor
	}
	var backward []map[string]any
	before := any(nil)
	for n := 0; ; n++ {
		p := c.page(e, o.orderBy, vars{"last": size, "before": before})
		if p.TotalCount != c.total {
			t.Fatalf("%s %v: totalCount %d going backward, want %d", c.name, o.orderBy, p.TotalCount, c.total)
		}
		if p.PageInfo.HasNextPage != (n > 0) {
			t.Fatalf("%s %v backward page %d: hasNextPage %v", c.name, o.orderBy, n, p.PageInfo.HasNextPage)
		}
		checkEnds(t, c.name, p)
		nodes := make([]map[string]any, len(p.Edges))
		for i, ed := range p.Edges {
			nodes[i] = ed.Node
		}
		backward = append(nodes, backward...)
		if len(p.Edges) > size || n > c.total {
			t.Fatalf("%s: backward page %d of %d items (asked %d)", c.name, n, len(p.Edges), size)
		}
		if !p.PageInfo.HasPreviousPage {
			break
		}
		before = *p.PageInfo.StartCursor
	}
	ids := func(nodes []map[string]any) []string {
		var out []string
		for _, n := range nodes {
			out = append(out, fmt.Sprint(n["id"]))
		}
		return out
	}
	fw, bw := ids(forward), ids(backward)
	if !slices.Equal(fw, bw) {
		t.Fatalf("%s %v: forward %v\nbackward %v", c.name, o.orderBy, fw, bw)
	}
	if len(fw) != c.total {
		t.Fatalf("%s %v: walked %d items, totalCount %d", c.name, o.orderBy, len(fw), c.total)
	}
	seen := map[string]bool{}
	for i, n := range forward {
		if seen[fw[i]] {
			t.Fatalf("%s %v: %s twice", c.name, o.orderBy, fw[i])
		}
		seen[fw[i]] = true
		if i == 0 {
			continue
		}
		pk, k := o.key(forward[i-1]), o.key(n)
		pid, id := localID(fmt.Sprint(forward[i-1]["id"])), localID(fmt.Sprint(n["id"]))
		cmp := strings.Compare(pk, k)
		if cmp == 0 {
			cmp = strings.Compare(pid, id)
		}
		if o.desc {
			cmp = -cmp
		}
		if cmp >= 0 {
			t.Fatalf("%s %v: %v (%q) before %v (%q)", c.name, o.orderBy, forward[i-1], pk, n, k)
		}
	}
	// A page between two cursors: from the second item to the one before last.
	if len(cursors) >= 4 {
		p := c.page(e, o.orderBy, vars{"first": len(cursors), "after": cursors[0], "before": cursors[len(cursors)-1]})
		if got := ids(nodesOf(p)); !slices.Equal(got, fw[1:len(fw)-1]) || p.PageInfo.HasNextPage || !p.PageInfo.HasPreviousPage {
			t.Fatalf("%s %v: between the first and the last: %v %+v, want %v", c.name, o.orderBy, got, p.PageInfo, fw[1:len(fw)-1])
		}
	}
	return forward
}

func nodesOf(p connPage) []map[string]any {
	var out []map[string]any
	for _, ed := range p.Edges {
		out = append(out, ed.Node)
	}
	return out
}

// checkEnds checks that startCursor and endCursor are the page's first and
// last cursors (null for an empty page).
func checkEnds(t *testing.T, name string, p connPage) {
	t.Helper()
	if len(p.Edges) == 0 {
		if p.PageInfo.StartCursor != nil || p.PageInfo.EndCursor != nil {
			t.Fatalf("%s: an empty page with cursors %+v", name, p.PageInfo)
		}
		return
	}
	if p.PageInfo.StartCursor == nil || *p.PageInfo.StartCursor != p.Edges[0].Cursor ||
		p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor != p.Edges[len(p.Edges)-1].Cursor {
		t.Fatalf("%s: startCursor/endCursor are not the page's ends: %+v", name, p.PageInfo)
	}
}

// asStaff runs SQL as the support path does, to give rows equal sort keys
// (ties) that the API would not make within one test.
func asStaff(t *testing.T, e *env, stmts ...string) {
	t.Helper()
	err := e.svc.DB.CrossTenant(context.Background(), tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every connection pages forward and backward through the same items in
// every order it offers, sorted with ties broken by ID, and counts the whole
// list (this account's rows only) when asked.
func TestConnectionsPageBothWaysInEveryOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acmeID, owner := e.account("Acme", "owner@acme.example")
	_, other := e.account("acme", "owner@other.example")
	_, zed := e.account("Zed", "owner@zed.example")
	staff := e.staff("support@skiff.example")

	// Rows with equal keys: names equal but for case, and times made equal below.
	names := []string{"Ann", "ann", "Bob", "bob", "Cy", "Dee", "ANN"}
	for i, n := range names {
		for a, tok := range []string{owner, other} {
			e.mustDo(tok, `mutation($e: String!, $n: String!) { createUser(input: {email: $e, name: $n}) { user { id } } }`,
				vars{"e": fmt.Sprintf("u%d-%s@a%d.example", i, strings.ToLower(n), a), "n": n}, nil)
			e.mustDo(tok, `mutation($e: String!, $n: String!, $c: String) { createContact(input: {email: $e, name: $n, company: $c}) { contact { id } } }`,
				vars{"e": fmt.Sprintf("c%d@contacts.example", i), "n": n, "c": []string{"Initech", "initech", "Hooli"}[i%3]}, nil)
			e.mustDo(tok, `mutation($n: String!) { createProjectFolder(input: {name: $n}) { projectFolder { id } } }`, vars{"n": n + " plans"}, nil)
		}
	}
	for _, g := range []string{"zeta", "Alpha", "beta", "Beta two"} {
		e.mustDo(owner, `mutation($n: String!) { createGroup(input: {name: $n, permissions: []}) { group { id } } }`, vars{"n": g}, nil)
	}
	for _, tok := range []string{owner, other} {
		e.mustDo(tok, `mutation { requestSftpModule(input: {message: "please"}) { userErrors { message } } }`, nil, nil)
	}
	const tie = "'2026-01-02T03:04:05.123456Z'"
	asStaff(t, e,
		`UPDATE users SET created_at = `+tie+` WHERE lower(name) IN ('ann', 'bob')`,
		`UPDATE contacts SET created_at = `+tie+` WHERE lower(name) IN ('ann', 'cy')`,
		`UPDATE project_folders SET created_at = `+tie+`, updated_at = `+tie+` WHERE lower(name) LIKE 'ann%' OR lower(name) LIKE 'dee%'`,
		`UPDATE groups SET created_at = `+tie+` WHERE builtin IS NULL OR builtin = 'JAILED'`,
		`UPDATE audit_events SET at = `+tie+` WHERE kind LIKE 'contact.%'`,
		`UPDATE outbox SET created_at = `+tie+` WHERE recipient LIKE 'u1-%' OR recipient LIKE 'u2-%' OR recipient LIKE 'u3-%'`,
		`UPDATE accounts SET created_at = `+tie,
		`UPDATE account_activity SET last_activity_at = `+tie+` WHERE account_id <> '`+acmeID+`'`,
		`UPDATE sftp_module_requests SET created_at = `+tie,
	)
	// Logins (API sessions; the trigger keeps each user's latest on the row):
	// the Bobs at the same moment, Cy earlier, the owner now, the others never.
	if err := e.svc.DB.InAccount(context.Background(), acmeID, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO tokens (hash, account_id, user_id, created_at, expires_at)
			SELECT sha256(convert_to(u.id::text || g, 'UTF8')), u.account_id, u.id,
				CASE WHEN lower(u.name) = 'bob' THEN ` + tie + `::timestamptz ELSE '2025-12-01T00:00:00Z'::timestamptz - g * interval '1 day' END,
				now() + interval '1 day'
			FROM users u, generate_series(1, 2) g WHERE lower(u.name) IN ('bob', 'cy')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	var counts struct {
		Account struct {
			Group struct {
				Edges []struct{ Node struct{ ID, Builtin *string } }
			} `json:"groups"`
			AuditEvents   struct{ TotalCount int }
			Notifications struct{ TotalCount int }
		}
	}
	e.mustDo(owner, `{ account { groups(first: 10) { edges { node { id builtin } } }
		auditEvents { totalCount } notifications { totalCount } } }`, nil, &counts)
	var proID string
	for _, g := range counts.Account.Group.Edges {
		if g.Node.Builtin != nil && *g.Node.Builtin == "PRO" {
			proID = *g.Node.ID
		}
	}
	events, emails := counts.Account.AuditEvents.TotalCount, counts.Account.Notifications.TotalCount
	if events < 20 || emails < 7 {
		t.Fatalf("%d audit events, %d emails", events, emails)
	}

	conn := func(field, args, node string) string {
		return `query($first: Int, $after: String, $last: Int, $before: String, $orderBy: ` + args + `) { ` + field +
			`(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) { totalCount
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { ` + node + ` } } } }`
	}
	asc := func(field string) map[string]any { return map[string]any{"field": field, "direction": "ASC"} }
	desc := func(field string) map[string]any { return map[string]any{"field": field, "direction": "DESC"} }
	userOrders := []connOrder{
		{nil, false, lowerField("name")},
		{asc("NAME"), false, lowerField("name")},
		{desc("NAME"), true, lowerField("name")},
		{asc("EMAIL"), false, lowerField("email")},
		{desc("EMAIL"), true, lowerField("email")},
		{asc("CREATED_AT"), false, timeField("createdAt")},
		{desc("CREATED_AT"), true, timeField("createdAt")},
		// Never logged in: last in both directions.
		{asc("LAST_LOGIN"), false, orNever(timeField("lastLoginAt"), "~")},
		{desc("LAST_LOGIN"), true, orNever(timeField("lastLoginAt"), "")},
	}
	folderOrders := []connOrder{
		{nil, false, lowerField("name")},
		{desc("NAME"), true, lowerField("name")},
		{asc("CREATED_AT"), false, timeField("createdAt")},
		{desc("CREATED_AT"), true, timeField("createdAt")},
		{asc("UPDATED_AT"), false, timeField("updatedAt")},
		{desc("UPDATED_AT"), true, timeField("updatedAt")},
	}
	builtinFirst := func(n map[string]any) string {
		switch n["builtin"] {
		case "PRO":
			return "0"
		case "ASSOCIATE":
			return "1"
		case "JAILED":
			return "2"
		}
		return "3" + strings.ToLower(fmt.Sprint(n["name"]))
	}
	var ownerID struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(owner, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &ownerID)
	inAccount := func(s string) string { return "account { " + s + " }" }
	cases := []connCase{
		{name: "users", token: owner, path: []string{"account", "users"}, total: len(names) + 1, orders: userOrders,
			query: wrap(conn("users", "UserOrder", "id name email createdAt lastLoginAt"), "users", inAccount)},
		{name: "members", token: owner, path: []string{"node", "members"}, total: len(names) + 1, orders: userOrders, vars: vars{"g": proID},
			query: strings.Replace(wrap(conn("members", "UserOrder", "id name email createdAt lastLoginAt"), "members",
				func(s string) string { return "node(id: $g) { ... on Group { " + s + " } }" }), "$orderBy: UserOrder)", "$orderBy: UserOrder, $g: ID!)", 1)},
		{name: "contacts", token: owner, path: []string{"account", "contacts"}, total: len(names), orders: []connOrder{
			{nil, false, lowerField("name")},
			{desc("NAME"), true, lowerField("name")},
			{asc("EMAIL"), false, lowerField("email")},
			{asc("COMPANY"), false, lowerField("company")},
			{desc("COMPANY"), true, lowerField("company")},
			{asc("CREATED_AT"), false, timeField("createdAt")},
			{desc("CREATED_AT"), true, timeField("createdAt")},
		}, query: wrap(conn("contacts", "ContactOrder", "id name email company createdAt"), "contacts", inAccount)},
		{name: "groups", token: owner, path: []string{"account", "groups"}, total: 7, orders: []connOrder{
			{nil, false, builtinFirst},
			{desc("BUILT_IN_FIRST"), true, builtinFirst},
			{asc("NAME"), false, lowerField("name")},
			{desc("NAME"), true, lowerField("name")},
			{asc("CREATED_AT"), false, timeField("createdAt")},
			{desc("CREATED_AT"), true, timeField("createdAt")},
		}, query: wrap(conn("groups", "GroupOrder", "id name builtin createdAt"), "groups", inAccount)},
		{name: "projectFolders", token: owner, path: []string{"account", "projectFolders"}, total: len(names), orders: folderOrders,
			query: wrap(conn("projectFolders", "ProjectFolderOrder", "id name createdAt updatedAt"), "projectFolders", inAccount)},
		{name: "projectsSharedWithMe", token: owner, path: []string{"node", "projectsSharedWithMe"}, total: len(names), orders: folderOrders,
			vars: vars{"u": ownerID.Viewer.User.ID},
			query: strings.Replace(wrap(conn("projectsSharedWithMe", "ProjectFolderOrder", "id name createdAt updatedAt"), "projectsSharedWithMe",
				func(s string) string { return "node(id: $u) { ... on User { " + s + " } }" }), "$orderBy: ProjectFolderOrder)", "$orderBy: ProjectFolderOrder, $u: ID!)", 1)},
		{name: "auditEvents", token: owner, path: []string{"account", "auditEvents"}, total: events, orders: []connOrder{
			{nil, true, timeField("at")},
			{asc("AT"), false, timeField("at")},
			{desc("AT"), true, timeField("at")},
		}, query: wrap(conn("auditEvents", "AuditEventOrder", "id at"), "auditEvents", inAccount)},
		{name: "notifications", token: owner, path: []string{"account", "notifications"}, total: emails, orders: []connOrder{
			{nil, true, timeField("createdAt")},
			{asc("CREATED_AT"), false, timeField("createdAt")},
			{desc("CREATED_AT"), true, timeField("createdAt")},
		}, query: wrap(conn("notifications", "NotificationOrder", "id createdAt"), "notifications", inAccount)},
		{name: "accounts", token: staff, path: []string{"accounts"}, total: 3, orders: []connOrder{
			{nil, false, lowerField("name")},
			{desc("NAME"), true, lowerField("name")},
			{asc("CREATED_AT"), false, timeField("createdAt")},
			{asc("LAST_ACTIVITY"), false, timeField("lastActivityAt")},
			{desc("LAST_ACTIVITY"), true, timeField("lastActivityAt")},
		}, query: conn("accounts", "AccountOrder", "id name createdAt lastActivityAt")},
		{name: "sftpModuleRequests", token: staff, path: []string{"sftpModuleRequests"}, total: 2, orders: []connOrder{
			{nil, false, timeField("createdAt")},
		}, query: strings.NewReplacer("orderBy: $orderBy", "", ", $orderBy: Int", "").Replace(conn("sftpModuleRequests", "Int", "id createdAt"))},
	}
	for _, c := range cases {
		for _, o := range c.orders {
			c.walk(t, e, o, 2)
			if o.orderBy == nil { // a page size that divides the list, and one larger than it
				c.walk(t, e, o, 1)
				c.walk(t, e, o, c.total+1)
			}
		}
	}

	// The other account's rows are not counted; a plain user counts only what they see.
	var mine struct {
		Account struct {
			Users, ProjectFolders, Groups struct{ TotalCount int }
		}
	}
	_, userTok := e.user(owner, "plain@acme.example", "USER")
	e.mustDo(userTok, `{ account { users { totalCount } projectFolders { totalCount } groups { totalCount } } }`, nil, &mine)
	if a := mine.Account; a.Users.TotalCount != 1 || a.ProjectFolders.TotalCount != 0 || a.Groups.TotalCount != 1 {
		t.Fatalf("a plain user's counts: %+v", a)
	}

	// Newest activity first puts the account that last changed first.
	var byActivity struct {
		Accounts struct {
			Edges []struct{ Node struct{ Name string } }
		}
	}
	e.mustDo(staff, `{ accounts(orderBy: {field: LAST_ACTIVITY, direction: DESC}) { edges { node { name } } } }`, nil, &byActivity)
	if n := byActivity.Accounts.Edges; len(n) != 3 || n[0].Node.Name != "Acme" {
		t.Fatalf("by activity: %+v", n)
	}
	// An audited change in Zed makes it the latest.
	e.mustDo(zed, `mutation { createContact(input: {email: "c@zed.example", name: "C"}) { contact { id } } }`, nil, nil)
	e.mustDo(staff, `{ accounts(orderBy: {field: LAST_ACTIVITY, direction: DESC}) { edges { node { name } } } }`, nil, &byActivity)
	if n := byActivity.Accounts.Edges; len(n) != 3 || n[0].Node.Name != "Zed" || n[1].Node.Name != "Acme" {
		t.Fatalf("by activity after a change in Zed: %+v", n)
	}
	// The account's own admins read it too; its other users may not.
	var own struct {
		Account struct{ LastActivityAt *time.Time }
	}
	e.mustDo(zed, `{ account { lastActivityAt } }`, nil, &own)
	if own.Account.LastActivityAt == nil || time.Since(*own.Account.LastActivityAt) > time.Hour {
		t.Fatalf("Zed's last activity: %v", own.Account.LastActivityAt)
	}
	if r := e.do(userTok, `{ account { name lastActivityAt } }`, nil); len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" {
		t.Fatalf("a plain user's lastActivityAt: %+v %s", r.Errors, r.Data)
	}
}

// wrap puts a connection's selection inside outer (e.g. account { … }).
func wrap(query, field string, outer func(string) string) string {
	i := strings.Index(query, field+"(")
	return query[:i] + outer(query[i:len(query)-1]) + "}"
}

// A cursor belongs to one list in one order: used with another order, another
// list, or after tampering it is refused as bad input, and so are first with
// last and page sizes out of range.
func TestConnectionCursorMisuseIsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	for i := range 3 {
		e.mustDo(owner, `mutation($e: String!) { createUser(input: {email: $e, name: "U"}) { user { id } } }`,
			vars{"e": fmt.Sprintf("u%d@acme.example", i)}, nil)
		e.mustDo(owner, `mutation($e: String!) { createContact(input: {email: $e, name: "C"}) { contact { id } } }`,
			vars{"e": fmt.Sprintf("c%d@acme.example", i)}, nil)
	}
	var page struct {
		Account struct {
			Users struct{ PageInfo struct{ EndCursor string } }
		}
	}
	e.mustDo(owner, `{ account { users(first: 1, orderBy: {field: EMAIL}) { pageInfo { endCursor } } } }`, nil, &page)
	cur := page.Account.Users.PageInfo.EndCursor
	// The same order takes it, both ways.
	e.mustDo(owner, `query($c: String!) { account { a: users(after: $c, orderBy: {field: EMAIL}) { totalCount } b: users(before: $c, orderBy: {field: EMAIL, direction: ASC}) { totalCount } } }`, vars{"c": cur}, nil)

	users := `query($c: String, $o: UserOrder, $f: Int, $l: Int) { account { users(first: $f, last: $l, after: $c, orderBy: $o) { edges { cursor } } } }`
	tampered := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(mustDecode(t, cur), "EMAIL", "NAME", 1)))
	for name, v := range map[string]vars{
		"another field":     {"c": cur, "o": map[string]any{"field": "NAME"}},
		"the default order": {"c": cur},
		"another direction": {"c": cur, "o": map[string]any{"field": "EMAIL", "direction": "DESC"}},
		"first with last":   {"f": 1, "l": 1},
		"last too large":    {"l": 201},
		"not a cursor":      {"c": "bogus"},
		"a tampered order":  {"c": tampered, "o": map[string]any{"field": "EMAIL"}},
	} {
		if err := e.mustFail(owner, users, v, "BAD_USER_INPUT"); err.Message == "" {
			t.Fatalf("%s: no message", name)
		}
	}
	// A cursor of users is not one of contacts, even in the same order.
	e.mustFail(owner, `query($c: String!) { account { contacts(before: $c, orderBy: {field: EMAIL}) { totalCount } } }`, vars{"c": cur}, "BAD_USER_INPUT")
	// The error names the argument at fault.
	if err := e.mustFail(owner, `query($c: String!) { account { users(before: $c) { totalCount } } }`, vars{"c": cur}, "BAD_USER_INPUT"); err.Extensions["field"] != "before" {
		t.Fatalf("field %v", err.Extensions["field"])
	}
}

func mustDecode(t *testing.T, c string) string {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Nested connections of a page of rows (each group's members, each user's
// shared folders) are loaded in one batch per page and order, and each
// answers exactly what the connection answers for its row alone.
func TestNestedConnectionsPageAndSortInBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	var groups []string
	for _, g := range []string{"Red", "Blue"} {
		var out struct {
			CreateGroup struct{ Group struct{ ID string } }
		}
		e.mustDo(owner, `mutation($n: String!) { createGroup(input: {name: $n, permissions: []}) { group { id } } }`, vars{"n": g}, &out)
		groups = append(groups, out.CreateGroup.Group.ID)
	}
	var folders []string
	for _, f := range []string{"Alpha", "beta", "Gamma"} {
		var out struct {
			CreateProjectFolder struct{ ProjectFolder struct{ ID string } }
		}
		e.mustDo(owner, `mutation($n: String!) { createProjectFolder(input: {name: $n}) { projectFolder { id } } }`, vars{"n": f}, &out)
		folders = append(folders, out.CreateProjectFolder.ProjectFolder.ID)
	}
	for i := range 7 {
		id, _ := e.user(owner, fmt.Sprintf("u%d@acme.example", i), "USER")
		e.mustDo(owner, `mutation($u: ID!, $g: ID!) { setUserGroup(input: {userId: $u, groupId: $g}) { userErrors { message } } }`,
			vars{"u": id, "g": groups[i%2]}, nil)
		for _, f := range folders[:i%4] {
			e.mustDo(owner, `mutation($f: ID!, $u: ID!) { shareProjectFolder(input: {folderId: $f, userId: $u, preset: READ}) { userErrors { message } } }`,
				vars{"f": f, "u": id}, nil)
		}
	}
	type nested struct {
		TotalCount int
		PageInfo   connPageInfo
		Edges      []struct{ Node struct{ Email, Name string } }
	}
	members := `members(last: 2, orderBy: {field: EMAIL, direction: DESC}) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { email } } }`
	var all struct {
		Account struct {
			Groups struct {
				Edges []struct {
					Node struct {
						ID      string
						Members nested
					}
				}
			}
		}
	}
	e.mustDo(owner, `{ account { groups { edges { node { id `+members+` } } } } }`, nil, &all)
	checked := 0
	for _, g := range all.Account.Groups.Edges {
		var alone struct{ Node struct{ Members nested } }
		e.mustDo(owner, `query($g: ID!) { node(id: $g) { ... on Group { `+members+` } } }`, vars{"g": g.Node.ID}, &alone)
		if asJSON(alone.Node.Members) != asJSON(g.Node.Members) {
			t.Fatalf("group %s: in the batch %+v, alone %+v", g.Node.ID, g.Node.Members, alone.Node.Members)
		}
		if slices.Contains(groups, g.Node.ID) {
			checked++
			if m := g.Node.Members; m.TotalCount < 3 || len(m.Edges) != 2 || !m.PageInfo.HasPreviousPage || m.PageInfo.HasNextPage ||
				m.Edges[0].Node.Email < m.Edges[1].Node.Email {
				t.Fatalf("group %s members: %+v", g.Node.ID, m)
			}
		}
	}
	if checked != 2 {
		t.Fatalf("%d custom groups listed", checked)
	}

	shared := `projectsSharedWithMe(first: 1, orderBy: {field: NAME, direction: DESC}) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { name } } }`
	var users struct {
		Account struct {
			Users struct {
				Edges []struct {
					Node struct {
						ID                   string
						ProjectsSharedWithMe nested
					}
				}
			}
		}
	}
	e.mustDo(owner, `{ account { users { edges { node { id `+shared+` } } } } }`, nil, &users)
	counts := map[int]int{}
	for _, u := range users.Account.Users.Edges {
		var alone struct {
			Node struct{ ProjectsSharedWithMe nested }
		}
		e.mustDo(owner, `query($u: ID!) { node(id: $u) { ... on User { `+shared+` } } }`, vars{"u": u.Node.ID}, &alone)
		if asJSON(alone.Node.ProjectsSharedWithMe) != asJSON(u.Node.ProjectsSharedWithMe) {
			t.Fatalf("user %s: in the batch %+v, alone %+v", u.Node.ID, u.Node.ProjectsSharedWithMe, alone.Node.ProjectsSharedWithMe)
		}
		p := u.Node.ProjectsSharedWithMe
		counts[p.TotalCount]++
		if p.TotalCount > 0 && (len(p.Edges) != 1 || p.PageInfo.HasNextPage != (p.TotalCount > 1) || p.PageInfo.HasPreviousPage) {
			t.Fatalf("user %s shared folders: %+v", u.Node.ID, p)
		}
	}
	// Users shared 0, 1, 2 and 3 folders (the owner, their creator, all 3).
	if counts[0] != 2 || counts[1] != 2 || counts[2] != 2 || counts[3] != 2 {
		t.Fatalf("users by folders shared with them: %v", counts)
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
