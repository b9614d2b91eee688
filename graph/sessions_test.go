package graph_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
)

// apiSession is an ApiSession as the tests read it.
type apiSession struct {
	ID, TokenKind, UserAgent string
	IP                       *string
	CreatedAt                time.Time
	LastUsedAt               *time.Time
	Current                  bool
}

func (e *env) apiSessions(token string) []apiSession {
	e.t.Helper()
	var out struct {
		Viewer struct{ APISessions []apiSession }
	}
	e.mustDo(token, `{ viewer { ... on UserViewer { apiSessions { id tokenKind userAgent ip createdAt lastUsedAt current } }
		... on StaffViewer { apiSessions { id tokenKind userAgent ip createdAt lastUsedAt current } } } }`, nil, &out)
	return out.Viewer.APISessions
}

// loginResult is the login mutation's answer as the session tests read it.
type loginResult struct {
	Token, RefreshToken              *string
	ExpiresAt, RefreshTokenExpiresAt *time.Time
	UserErrors                       []userError
}

// loginAs logs in with tokenKind (BEARER or ACCESS_AND_REFRESH), sending
// userAgent as the User-Agent header.
func (e *env) loginAs(email, tokenKind, userAgent string) loginResult {
	e.t.Helper()
	req := e.newPost("", map[string]any{
		"query": `mutation($e: String!, $p: String!, $k: TokenKind) { login(input: {email: $e, password: $p, tokenKind: $k}) {
			token expiresAt refreshToken refreshTokenExpiresAt userErrors { field code message } } }`,
		"variables": vars{"e": email, "p": testPassword, "k": tokenKind},
	})
	req.Header.Set("User-Agent", userAgent)
	var out struct {
		Data struct{ Login loginResult }
	}
	e.send(req, &out)
	if out.Data.Login.Token == nil {
		e.t.Fatalf("login %s: %+v", email, out.Data.Login.UserErrors)
	}
	return out.Data.Login
}

// send sends req and decodes the JSON response into out.
func (e *env) send(req *http.Request, out any) {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		e.t.Fatalf("decode %s: %v", buf.String(), err)
	}
}

// refresh runs refreshSession and returns its new tokens, or the user errors.
func (e *env) refresh(refreshToken string) (loginResult, []userError) {
	e.t.Helper()
	var out struct{ RefreshSession loginResult }
	e.mustDo("", `mutation($r: String!) { refreshSession(input: {refreshToken: $r}) {
		token expiresAt refreshToken refreshTokenExpiresAt userErrors { field code message } } }`, vars{"r": refreshToken}, &out)
	return out.RefreshSession, out.RefreshSession.UserErrors
}

// mustBeRefused asserts that token no longer authenticates: 401, UNAUTHENTICATED.
func (e *env) mustBeRefused(token, why string) {
	e.t.Helper()
	r := e.do(token, `{ viewer { __typename } }`, nil)
	if r.status != http.StatusUnauthorized || len(r.Errors) != 1 || r.Errors[0].code() != "UNAUTHENTICATED" {
		e.t.Fatalf("%s: status %d errors %+v", why, r.status, r.Errors)
	}
}

func (e *env) mustWork(token, why string) {
	e.t.Helper()
	if r := e.do(token, `{ viewer { __typename } }`, nil); r.status != http.StatusOK || len(r.Errors) > 0 {
		e.t.Fatalf("%s: status %d errors %+v", why, r.status, r.Errors)
	}
}

// auditKinds lists the account's audit events' kinds, newest first, with
// their before states.
func (e *env) auditKinds(token string) (kinds []string, before []json.RawMessage) {
	e.t.Helper()
	var out struct {
		Account struct {
			AuditEvents struct {
				Edges []struct {
					Node struct {
						Kind, KindName string
						Before         json.RawMessage
					}
				}
			}
		}
	}
	e.mustDo(token, `{ account { auditEvents(first: 50) { edges { node { kind kindName before } } } } }`, nil, &out)
	for _, ed := range out.Account.AuditEvents.Edges {
		kinds = append(kinds, ed.Node.Kind)
		before = append(before, ed.Node.Before)
	}
	return kinds, before
}

func TestAPISessionsListAndRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	phone := e.loginAs("owner@acme.example", "BEARER", "AcmeMobile/2.1 (iPhone)")
	_, userTok := e.user(owner, "ulla@acme.example", "USER")

	sessions := e.apiSessions(owner)
	if len(sessions) != 2 || !sessions[1].Current || sessions[0].Current || sessions[0].UserAgent != "AcmeMobile/2.1 (iPhone)" ||
		sessions[0].TokenKind != "BEARER" || sessions[0].IP == nil || *sessions[0].IP != "127.0.0.1" || sessions[0].LastUsedAt == nil {
		t.Fatalf("sessions: %+v", sessions)
	}
	// Someone else's session is not found, and stays.
	other := e.apiSessions(userTok)
	if len(other) != 1 {
		t.Fatalf("the user's sessions: %+v", other)
	}
	e.mustFail(owner, `mutation($id: ID!) { revokeApiSession(input: {id: $id}) { apiSession { id } } }`, vars{"id": other[0].ID}, "NOT_FOUND")
	e.mustWork(userTok, "a session another user tried to revoke")

	// A session is a Node its owner alone fetches by ID; to anyone else
	// (their administrator, support staff) it is null, like an unknown ID.
	staff := e.staff("support@skiff.example")
	nodeQuery := `query($id: ID!) { node(id: $id) { id ... on ApiSession { userAgent current } } }`
	var node struct {
		Node *struct {
			ID, UserAgent string
			Current       bool
		}
	}
	e.mustDo(owner, nodeQuery, vars{"id": sessions[0].ID}, &node)
	if node.Node == nil || node.Node.ID != sessions[0].ID || node.Node.UserAgent != "AcmeMobile/2.1 (iPhone)" || node.Node.Current {
		t.Fatalf("node(the phone's session) for its owner: %+v", node.Node)
	}
	for _, tok := range []string{userTok, staff} {
		node.Node = nil
		e.mustDo(tok, nodeQuery, vars{"id": sessions[0].ID}, &node)
		if node.Node != nil {
			t.Fatalf("node(the owner's session) for someone else: %+v", node.Node)
		}
	}

	// Revoking the phone's session ends its token at once.
	var rev struct {
		RevokeApiSession struct {
			ApiSession struct{ ID, UserAgent string }
		}
	}
	e.mustDo(owner, `mutation($id: ID!) { revokeApiSession(input: {id: $id}) { apiSession { id userAgent } } }`, vars{"id": sessions[0].ID}, &rev)
	if rev.RevokeApiSession.ApiSession.ID != sessions[0].ID {
		t.Fatalf("revoked: %+v", rev)
	}
	e.mustBeRefused(*phone.Token, "a revoked session's token")
	if s := e.apiSessions(owner); len(s) != 1 || !s[0].Current {
		t.Fatalf("after revoking: %+v", s)
	}
	e.mustFail(owner, `mutation($id: ID!) { revokeApiSession(input: {id: $id}) { apiSession { id } } }`, vars{"id": sessions[0].ID}, "NOT_FOUND")
	node.Node = nil
	if e.mustDo(owner, nodeQuery, vars{"id": sessions[0].ID}, &node); node.Node != nil { // revoked above
		t.Fatalf("node(a revoked session): %+v", node.Node)
	}

	// Log out everywhere else: two more sessions, one with refresh tokens.
	laptop := e.loginAs("owner@acme.example", "BEARER", "Firefox")
	tablet := e.loginAs("owner@acme.example", "ACCESS_AND_REFRESH", "AcmeMobile/2.1 (iPad)")
	var others struct {
		RevokeOtherApiSessions struct{ RevokedCount int }
	}
	e.mustDo(owner, `mutation { revokeOtherApiSessions { revokedCount } }`, nil, &others)
	if others.RevokeOtherApiSessions.RevokedCount != 2 {
		t.Fatalf("revokeOtherApiSessions: %+v", others)
	}
	e.mustBeRefused(*laptop.Token, "another session's bearer token")
	e.mustBeRefused(*tablet.Token, "another session's access token")
	if _, ues := e.refresh(*tablet.RefreshToken); len(ues) != 1 || ues[0].Code != "UNAUTHENTICATED" {
		t.Fatalf("refresh of a revoked session: %+v", ues)
	}
	e.mustWork(owner, "the current session")

	// Both are in the audit trail, with the session as it was, as JSON.
	kinds, before := e.auditKinds(owner)
	if kinds[0] != "API_SESSION_OTHERS_REVOKED" || kinds[1] != "API_SESSION_REVOKED" {
		t.Fatalf("audit kinds: %v", kinds)
	}
	var state struct{ UserAgent, Kind string }
	if err := json.Unmarshal(before[1], &state); err != nil || state.UserAgent != "AcmeMobile/2.1 (iPhone)" || state.Kind != "BEARER" {
		t.Fatalf("audit before %s: %v", before[1], err)
	}
}

func TestStaffAPISessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	staff := e.staff("support@skiff.example")
	second := e.login("support@skiff.example", testPassword)
	// Three logins: enrol-only (two-factor is required of staff), with a
	// recovery code, and the second.
	s := e.apiSessions(staff)
	current := 0
	for _, x := range s {
		if x.Current {
			current++
		}
	}
	if len(s) != 3 || current != 1 || !s[1].Current {
		t.Fatalf("staff sessions: %+v", s)
	}
	var others struct {
		RevokeOtherApiSessions struct{ RevokedCount int }
	}
	e.mustDo(second, `mutation { revokeOtherApiSessions { revokedCount } }`, nil, &others)
	if others.RevokeOtherApiSessions.RevokedCount != 2 {
		t.Fatalf("revokeOtherApiSessions: %+v", others)
	}
	e.mustBeRefused(staff, "a staff session revoked by its owner")
	e.mustWork(second, "the staff member's current session")
}

func TestRefreshTokenRotationAndReuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	l := e.loginAs("owner@acme.example", "ACCESS_AND_REFRESH", "AcmeMobile/2.1")
	if !strings.HasPrefix(*l.Token, "skfa_") || l.RefreshToken == nil || !strings.HasPrefix(*l.RefreshToken, "skfr_") ||
		time.Until(*l.ExpiresAt) > 16*time.Minute || time.Until(*l.RefreshTokenExpiresAt) < 29*24*time.Hour {
		t.Fatalf("login: %+v", l)
	}
	e.mustWork(*l.Token, "the access token")
	e.mustBeRefused(*l.RefreshToken, "a refresh token used as a bearer token")

	// A refresh gives a new pair; the old access token runs out by itself.
	r2, ues := e.refresh(*l.RefreshToken)
	if len(ues) != 0 || *r2.Token == *l.Token || *r2.RefreshToken == *l.RefreshToken {
		t.Fatalf("refresh: %+v %+v", r2, ues)
	}
	e.mustWork(*r2.Token, "the refreshed access token")
	e.mustWork(*l.Token, "the previous access token, before it expires")
	s := e.apiSessions(*r2.Token)
	if len(s) != 2 || !s[0].Current || s[0].TokenKind != "ACCESS_AND_REFRESH" {
		t.Fatalf("sessions: %+v", s)
	}
	r3, ues := e.refresh(*r2.RefreshToken)
	if len(ues) != 0 {
		t.Fatalf("second refresh: %+v", ues)
	}

	// The first refresh token again: a copy is in other hands, so the whole
	// session ends, the newest tokens too.
	if _, ues := e.refresh(*l.RefreshToken); len(ues) != 1 || ues[0].Code != "UNAUTHENTICATED" || *ues[0].Field != "refreshToken" {
		t.Fatalf("reused refresh token: %+v", ues)
	}
	e.mustBeRefused(*r3.Token, "the newest access token of a session whose refresh token was reused")
	e.mustBeRefused(*l.Token, "the first access token of that session")
	if _, ues := e.refresh(*r3.RefreshToken); len(ues) != 1 || ues[0].Code != "UNAUTHENTICATED" {
		t.Fatalf("the newest refresh token of a revoked session: %+v", ues)
	}
	if kinds, _ := e.auditKinds(owner); kinds[0] != "API_SESSION_REFRESH_REUSED" {
		t.Fatalf("audit: %v", kinds)
	}
	// Garbage is refused alike, and revokes nothing.
	if _, ues := e.refresh("skfr_madeup"); len(ues) != 1 || ues[0].Code != "UNAUTHENTICATED" {
		t.Fatalf("made-up refresh token: %+v", ues)
	}
	e.mustWork(owner, "another session of the owner")
}

func TestAccessTokenExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := testkit.NewClock(time.Now())
	e.svc.Now = clock.Now
	e.account("Acme", "owner@acme.example")
	l := e.loginAs("owner@acme.example", "ACCESS_AND_REFRESH", "AcmeMobile/2.1")
	if got := l.ExpiresAt.Sub(clock.Now()); got < 14*time.Minute || got > 15*time.Minute {
		t.Fatalf("access token lasts %v", got)
	}
	clock.Advance(14 * time.Minute)
	e.mustWork(*l.Token, "an access token within its 15 minutes")
	clock.Advance(2 * time.Minute)
	e.mustBeRefused(*l.Token, "an access token after its 15 minutes")
	r, ues := e.refresh(*l.RefreshToken)
	if len(ues) != 0 {
		t.Fatalf("refresh after the access token expired: %+v", ues)
	}
	e.mustWork(*r.Token, "the new access token")
	// A session not refreshed for the token lifetime (30 days) is over.
	clock.Advance(30*24*time.Hour + time.Minute)
	if _, ues := e.refresh(*r.RefreshToken); len(ues) != 1 || ues[0].Code != "UNAUTHENTICATED" {
		t.Fatalf("refresh after 30 days: %+v", ues)
	}
}

// A logout with an access token ends the session's refresh token too; so
// does a password change (the user's other sessions).
func TestLogoutEndsRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	a := e.loginAs("owner@acme.example", "ACCESS_AND_REFRESH", "A")
	e.mustDo(*a.Token, `mutation { logout { ok } }`, nil, nil)
	if _, ues := e.refresh(*a.RefreshToken); len(ues) != 1 || ues[0].Code != "UNAUTHENTICATED" {
		t.Fatalf("refresh after logout: %+v", ues)
	}
	b := e.loginAs("owner@acme.example", "ACCESS_AND_REFRESH", "B")
	var cp struct{ ChangePassword struct{ Ok bool } }
	e.mustDo(owner, `mutation { changePassword(input: {currentPassword: "`+testPassword+`", newPassword: "another good password"}) { ok } }`, nil, &cp)
	if !cp.ChangePassword.Ok {
		t.Fatal("changePassword failed")
	}
	if _, ues := e.refresh(*b.RefreshToken); len(ues) != 1 || ues[0].Code != "UNAUTHENTICATED" {
		t.Fatalf("refresh after a password change: %+v", ues)
	}
}

func TestLastAPILoginAt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := testkit.NewClock(time.Now().Truncate(time.Second))
	e.svc.Now = clock.Now
	_, owner := e.account("Acme", "owner@acme.example")
	uid, _ := e.user(owner, "ulla@acme.example", "USER")
	q := `query($id: ID!) { node(id: $id) { ... on User { lastLoginAt lastApiLoginAt lastSftpLoginAt } } }`
	type times struct{ LastLoginAt, LastApiLoginAt, LastSftpLoginAt *time.Time }
	var out struct{ Node times }
	e.mustDo(owner, q, vars{"id": uid}, &out)
	first := clock.Now()
	if out.Node.LastApiLoginAt == nil || !out.Node.LastApiLoginAt.Equal(first) || out.Node.LastLoginAt == nil ||
		!out.Node.LastLoginAt.Equal(first) || out.Node.LastSftpLoginAt != nil {
		t.Fatalf("after one login at %v: %+v", first, out.Node)
	}
	clock.Advance(time.Hour)
	e.login("ulla@acme.example", testPassword)
	e.mustDo(owner, q, vars{"id": uid}, &out)
	if !out.Node.LastApiLoginAt.Equal(clock.Now()) || !out.Node.LastLoginAt.Equal(clock.Now()) {
		t.Fatalf("after a second login at %v: %+v", clock.Now(), out.Node)
	}
	// On a page of users, every row has it.
	var page struct {
		Account struct {
			Users struct {
				Edges []struct {
					Node struct {
						Email       string
						LastLoginAt *time.Time
					}
				}
			}
		}
	}
	e.mustDo(owner, `{ account { users(first: 10) { edges { node { email lastLoginAt } } } } }`, nil, &page)
	if len(page.Account.Users.Edges) != 2 {
		t.Fatalf("users: %+v", page)
	}
	for _, ed := range page.Account.Users.Edges {
		if ed.Node.LastLoginAt == nil {
			t.Fatalf("no lastLoginAt for %s", ed.Node.Email)
		}
	}
}
