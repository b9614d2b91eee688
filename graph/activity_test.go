package graph_test

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant/activity"
)

// rawUserID is the local ID in a User's global ID.
func rawUserID(t *testing.T, gid string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(gid)
	id, ok := strings.CutPrefix(string(b), "User:")
	if err != nil || !ok {
		t.Fatalf("not a user ID: %q", gid)
	}
	return id
}

// recordActivity writes events through a recorder, as the SFTP nodes do.
func (e *env) recordActivity(events ...activity.Event) {
	e.t.Helper()
	rec := activity.NewRecorder(e.svc.DB, activity.RecorderConfig{Node: "node-g"})
	rec.Start()
	for _, ev := range events {
		rec.Record(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil || rec.Stats().Recorded != int64(len(events)) {
		e.t.Fatalf("recorder: %+v, %v", rec.Stats(), err)
	}
}

// exportCSV GETs the activity export with the query q and returns the
// status and the body.
func (e *env) exportCSV(token string, q url.Values) (int, string, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/export/activity.csv?"+q.Encode(), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

type activityPage struct {
	Edges []struct {
		Node struct {
			Action, Outcome, Login, Path, ClientAddress, Node, UserID string
			TargetPath, Reason                                        *string
			Bytes                                                     *int64
			User                                                      *struct{ Name string }
		}
	}
	PageInfo struct {
		HasNextPage bool
		EndCursor   *string
	}
}

const activityFields = `edges { node { action outcome login path clientAddress node userId targetPath reason bytes user { name } } }
	pageInfo { hasNextPage endCursor }`

func TestSftpActivityOverGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.test")
	umaGID, uma := e.user(owner, "uma@acme.test", "USER")
	ivoGID, _ := e.user(owner, "ivo@acme.test", "USER")
	umaID, ivoID := rawUserID(t, umaGID), rawUserID(t, ivoGID)
	t0 := time.Now().Add(-time.Hour).UTC()
	n := int64(1234)
	ev := func(userID string, at time.Duration, action activity.Action, p string) activity.Event {
		return activity.Event{AccountID: accountID, UserID: userID, At: t0.Add(at), Login: "login", Action: action,
			Outcome: activity.Succeeded, Path: p, ClientAddr: "192.0.2.7"}
	}
	up := ev(umaID, 0, activity.ActionUpload, "/My Files/report.pdf")
	up.Bytes = &n
	formula := ev(umaID, time.Second, activity.ActionPermissionDenied, "/Projects Shared With Me/X/=cmd|' /C calc'!A0")
	formula.Login, formula.Reason, formula.Outcome = "@SUM(1+1)", "-2+3 UPLOAD: Permission denied", activity.Refused
	e.recordActivity(up, formula, ev(ivoID, 2*time.Second, activity.ActionDownload, "/My Files/ivo.txt"))

	var acct struct {
		Account struct{ SftpActivity activityPage }
	}
	e.mustDo(owner, `query($f: SftpActivityFilter) { account { sftpActivity(filter: $f, first: 10) { `+activityFields+` } } }`,
		vars{"f": map[string]any{"userId": umaGID, "actions": []string{"UPLOAD"}, "pathPrefix": "/My Files/"}}, &acct)
	edges := acct.Account.SftpActivity.Edges
	if len(edges) != 1 || edges[0].Node.Path != "/My Files/report.pdf" || edges[0].Node.Bytes == nil || *edges[0].Node.Bytes != 1234 ||
		edges[0].Node.UserID != umaGID || edges[0].Node.User == nil || edges[0].Node.ClientAddress != "192.0.2.7" ||
		edges[0].Node.Node != "node-g" || edges[0].Node.Action != "UPLOAD" || edges[0].Node.Outcome != "SUCCESS" {
		t.Fatalf("the owner's filtered view: %+v", edges)
	}

	// A plain user: not the account's log, but their own on their user.
	e.mustFail(uma, `{ account { sftpActivity { edges { cursor } } } }`, nil, "FORBIDDEN")
	var mine struct {
		Viewer struct {
			User struct{ SftpActivity activityPage }
		}
	}
	e.mustDo(uma, `{ viewer { ... on UserViewer { user { sftpActivity(filter: {userId: "`+ivoGID+`"}) { `+activityFields+` } } } } }`, nil, &mine)
	var got []string
	for _, ed := range mine.Viewer.User.SftpActivity.Edges {
		got = append(got, ed.Node.Action)
	}
	if !slices.Equal(got, []string{"PERMISSION_DENIED", "UPLOAD"}) {
		t.Errorf("Uma's own activity: %v", got)
	}

	// Another account's owner cannot reach it.
	_, rival := e.account("Rival", "owner@rival.test")
	if r := e.do(rival, `query($id: ID!) { node(id: $id) { ... on User { sftpActivity { edges { cursor } } } } }`, vars{"id": umaGID}); string(r.Data) != `{"node":null}` {
		t.Errorf("another account's owner reached a user's activity: %s %+v", r.Data, r.Errors)
	}
	if status, body, _ := e.exportCSV(rival, url.Values{"userId": {umaGID}}); status != http.StatusNotFound {
		t.Errorf("another account's export: %d %s", status, body)
	}
	// Naming the account is for support staff: another account's owner gets
	// 404, as account(id:) answers, never their own log in its place.
	if status, body, _ := e.exportCSV(rival, url.Values{"accountId": {globalID("Account", accountID)}}); status != http.StatusNotFound ||
		!strings.Contains(body, `"NOT_FOUND"`) {
		t.Errorf("another account's owner naming it: %d %s", status, body)
	}
	if status, body, _ := e.exportCSV(owner, url.Values{"accountId": {globalID("Account", accountID)}}); status != http.StatusOK ||
		!strings.Contains(body, "report.pdf") {
		t.Errorf("the owner naming their own account: %d %s", status, body)
	}
}

func TestSftpActivityCSVExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.test")
	umaGID, uma := e.user(owner, "uma@acme.test", "USER")
	ivoGID, _ := e.user(owner, "ivo@acme.test", "USER")
	umaID, ivoID := rawUserID(t, umaGID), rawUserID(t, ivoGID)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var events []activity.Event
	for i := range 2500 { // more than one page of the export
		events = append(events, activity.Event{AccountID: accountID, UserID: umaID, At: t0.Add(time.Duration(i) * time.Second),
			Login: "uma", Action: activity.ActionUpload, Outcome: activity.Succeeded, Path: "/My Files/f"})
	}
	events = append(events, activity.Event{AccountID: accountID, UserID: ivoID, At: t0.Add(time.Hour), Login: "=HYPERLINK(\"http://x\")",
		Action: activity.ActionRename, Outcome: activity.Failed, Path: "/My Files/+a", TargetPath: "/My Files/-b", Reason: "@evil"})
	e.recordActivity(events...)

	status, body, h := e.exportCSV(owner, url.Values{})
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", status, h.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2502 || strings.Join(rows[0], ",") != "at,action,outcome,user_id,login,client_address,path,target_path,bytes,duration_ms,reason,node" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	ivo := rows[1] // newest first
	if ivo[1] != "RENAME" || ivo[3] != ivoGID || ivo[4] != `'=HYPERLINK("http://x")` || ivo[6] != "/My Files/+a" ||
		ivo[7] != "/My Files/-b" || ivo[10] != "'@evil" {
		t.Errorf("the rename's row: %q", ivo)
	}
	for _, r := range rows[1:] {
		for _, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("a cell a spreadsheet would run: %q in %q", cell, r)
			}
		}
	}

	// Filters; a user exports only their own.
	_, body, _ = e.exportCSV(owner, url.Values{"actions": {"rename"}, "from": {t0.Add(time.Minute).Format(time.RFC3339)}})
	if n := strings.Count(body, "\n"); n != 2 {
		t.Errorf("filtered export has %d lines:\n%s", n, body)
	}
	_, body, _ = e.exportCSV(uma, url.Values{})
	if n := strings.Count(body, "\n"); n != 2501 || strings.Contains(body, ivoGID) {
		t.Errorf("Uma's export has %d lines", n)
	}
	if status, _, _ := e.exportCSV(uma, url.Values{"userId": {ivoGID}}); status != http.StatusNotFound {
		t.Errorf("Uma exporting Ivo's activity: %d", status)
	}
	if status, _, _ := e.exportCSV("", url.Values{}); status != http.StatusUnauthorized {
		t.Errorf("an export without a token: %d", status)
	}
	if status, body, _ := e.exportCSV(owner, url.Values{"from": {"yesterday"}}); status != http.StatusBadRequest || !strings.Contains(body, "RFC 3339") ||
		!strings.Contains(body, `"code":"BAD_USER_INPUT"`) || !strings.Contains(body, `"field":"from"`) {
		t.Errorf("a bad time: %d %s; want 400 with BAD_USER_INPUT on field from, as /graphql codes a bad argument", status, body)
	}
}

// The activity log pages like every connection (keyset, both ways, in
// each order, with totalCount): events of the same instant in ID order, one
// user's events on User.sftpActivity as on the account's with userId, and
// another account's events never counted.
func TestSftpActivityPagesBothWays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.test")
	umaGID, uma := e.user(owner, "uma@acme.test", "USER")
	ivoGID, _ := e.user(owner, "ivo@acme.test", "USER")
	rivalID, _ := e.account("Rival", "owner@rival.test")
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	// Recorded in this order (so IDs ascend): times with ties.
	offsets := []int{0, 0, 1, 1, 1, 2, 3, 3, 4}
	var events []activity.Event
	var oldestFirst []string
	for i, o := range offsets {
		user := rawUserID(t, umaGID)
		if i%3 == 2 {
			user = rawUserID(t, ivoGID)
		}
		p := fmt.Sprintf("/My Files/f%d", i)
		events = append(events, activity.Event{AccountID: accountID, UserID: user, At: t0.Add(time.Duration(o) * time.Second),
			Login: "l", Action: activity.ActionUpload, Outcome: activity.Succeeded, Path: p})
		oldestFirst = append(oldestFirst, p)
		events = append(events, activity.Event{AccountID: rivalID, UserID: user, At: t0, Login: "l", Action: activity.ActionMkdir,
			Outcome: activity.Succeeded, Path: "/rival"})
	}
	e.recordActivity(events...)
	newestFirst := slices.Clone(oldestFirst)
	slices.Reverse(newestFirst)
	var umasOldestFirst []string
	for i, p := range oldestFirst {
		if i%3 != 2 {
			umasOldestFirst = append(umasOldestFirst, p)
		}
	}
	umasNewestFirst := slices.Clone(umasOldestFirst)
	slices.Reverse(umasNewestFirst)

	type page struct {
		TotalCount int
		Edges      []struct{ Node struct{ Path string } }
		PageInfo   struct {
			HasNextPage, HasPreviousPage bool
			StartCursor, EndCursor       *string
		}
	}
	const fields = `totalCount edges { node { path } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`
	read := func(token, query string, v vars) page {
		t.Helper()
		var out map[string]json.RawMessage
		e.mustDo(token, query, v, &out)
		var p page
		raw := string(out["account"])
		if raw == "" {
			raw = string(out["viewer"])
		}
		i := strings.Index(raw, `"sftpActivity":`)
		if err := json.NewDecoder(strings.NewReader(raw[i+len(`"sftpActivity":`):])).Decode(&p); err != nil {
			t.Fatalf("%v in %s", err, raw)
		}
		return p
	}
	accountQuery := `query($f: SftpActivityFilter, $o: SftpActivityOrder, $first: Int, $after: String, $last: Int, $before: String) {
		account { sftpActivity(filter: $f, orderBy: $o, first: $first, after: $after, last: $last, before: $before) { ` + fields + ` } } }`
	userQuery := `query($o: SftpActivityOrder, $first: Int, $after: String, $last: Int, $before: String) { viewer { ... on UserViewer { user {
		sftpActivity(orderBy: $o, first: $first, after: $after, last: $last, before: $before) { ` + fields + ` } } } } }`
	walk := func(name, token, query string, v vars, want []string) {
		t.Helper()
		for _, size := range []int{1, 2, 4, len(want) + 1} {
			var forward []string
			after := any(nil)
			for n := 0; ; n++ {
				vv := vars{"first": size, "after": after}
				maps.Copy(vv, v)
				p := read(token, query, vv)
				if p.TotalCount != len(want) || p.PageInfo.HasPreviousPage != (n > 0) || len(p.Edges) > size {
					t.Fatalf("%s, %d a page, forward page %d: %+v", name, size, n, p)
				}
				for _, ed := range p.Edges {
					forward = append(forward, ed.Node.Path)
				}
				if !p.PageInfo.HasNextPage {
					break
				}
				after = *p.PageInfo.EndCursor
			}
			var backward []string
			before := any(nil)
			for n := 0; ; n++ {
				vv := vars{"last": size, "before": before}
				maps.Copy(vv, v)
				p := read(token, query, vv)
				if p.TotalCount != len(want) || p.PageInfo.HasNextPage != (n > 0) || len(p.Edges) > size {
					t.Fatalf("%s, %d a page, backward page %d: %+v", name, size, n, p)
				}
				var paths []string
				for _, ed := range p.Edges {
					paths = append(paths, ed.Node.Path)
				}
				backward = append(paths, backward...)
				if !p.PageInfo.HasPreviousPage {
					break
				}
				before = *p.PageInfo.StartCursor
			}
			if !slices.Equal(forward, want) || !slices.Equal(backward, want) {
				t.Fatalf("%s, %d a page:\nforward  %v\nbackward %v\nwant     %v", name, size, forward, backward, want)
			}
		}
	}
	asc := map[string]any{"field": "AT", "direction": "ASC"}
	walk("the account's, default order", owner, accountQuery, vars{}, newestFirst)
	walk("the account's, AT DESC", owner, accountQuery, vars{"o": map[string]any{"field": "AT"}}, newestFirst)
	walk("the account's, AT ASC", owner, accountQuery, vars{"o": asc}, oldestFirst)
	walk("one user's on the account's", owner, accountQuery, vars{"f": map[string]any{"userId": umaGID}}, umasNewestFirst)
	walk("one user's, AT ASC", owner, accountQuery, vars{"f": map[string]any{"userId": umaGID}, "o": asc}, umasOldestFirst)
	walk("the user's own", uma, userQuery, vars{}, umasNewestFirst)
	walk("the user's own, AT ASC", uma, userQuery, vars{"o": asc}, umasOldestFirst)

	// A cursor of another order, or of another list, is refused.
	p := read(owner, accountQuery, vars{"first": 1})
	e.mustFail(owner, accountQuery, vars{"first": 1, "after": *p.PageInfo.EndCursor, "o": asc}, "BAD_USER_INPUT")
	var users struct {
		Account struct {
			Users struct{ PageInfo struct{ EndCursor string } }
		}
	}
	e.mustDo(owner, `{ account { users(first: 1) { pageInfo { endCursor } } } }`, nil, &users)
	e.mustFail(owner, accountQuery, vars{"after": users.Account.Users.PageInfo.EndCursor}, "BAD_USER_INPUT")
}
