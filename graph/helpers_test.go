package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/sqlcount"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

func TestMain(m *testing.M) {
	tenant.UseCheapPasswordHashes() // what the tests check does not depend on the cost
	pgtest.Main(m)
}

// env is one test's Skiff: a fresh database, the service and the real HTTP handler.
type env struct {
	t   testing.TB
	svc *domain.Domain
	srv *httptest.Server
	now time.Time
	// statements counts the statements sent to the database (not BEGIN,
	// COMMIT or ROLLBACK), for page-cost tests.
	statements *sqlcount.Counter
	// recovery holds the unused recovery codes of logins that login enrolled
	// in two-factor because it was required of them (staff).
	recovery map[string][]string
}

const testPassword = "correct horse battery"

func newEnv(t testing.TB) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith is newEnv with the handler's configuration adjusted by tweak.
func newEnvWith(t testing.TB, tweak func(*graph.Config)) *env {
	t.Helper()
	ctx := context.Background()
	db, statements := pgtest.OpenCountingStore(t)
	// SFTP credentials name the host keys, so the deployment needs them.
	if err := sftplogin.NewDirectory(db).EnsureHostKeys(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, svc: domain.New(db), now: time.Now(), statements: statements}
	cfg := graph.Config{
		MaxBodyBytes: 64 << 10, AllowedOrigins: []string{"https://admin.example"},
		Ready: func(ctx context.Context) error { return db.X.PingContext(ctx) },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h := graph.NewHandler(&graph.Resolver{Tenant: e.svc}, cfg)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// account creates an account with an owner and returns the owner's token.
func (e *env) account(name, ownerEmail string) (accountID, token string) {
	e.t.Helper()
	a, _, err := e.svc.Accounts.CreateAccount(tenant.SystemContext(context.Background()), account.CreateAccountInput{
		Name: name, OwnerEmail: ownerEmail, OwnerName: name + " Owner", OwnerPassword: testPassword,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return a.ID, e.login(ownerEmail, testPassword)
}

func (e *env) staff(email string) string {
	e.t.Helper()
	if _, err := e.svc.People.CreateStaff(tenant.SystemContext(context.Background()), email, "Support", testPassword); err != nil {
		e.t.Fatal(err)
	}
	return e.login(email, testPassword)
}

// login logs in and returns a full token. Where two-factor is required and
// not yet on (staff), it enrols first and logs in again with a recovery
// code; later logins use the next recovery code.
func (e *env) login(email, password string) string {
	e.t.Helper()
	tok, required, errs := e.loginCode(email, password, "")
	if len(errs) == 1 && errs[0].Code == "TOTP_REQUIRED" && len(e.recovery[email]) > 0 {
		code := e.recovery[email][0]
		e.recovery[email] = e.recovery[email][1:]
		tok, required, errs = e.loginCode(email, password, code)
	}
	if tok == "" {
		e.t.Fatalf("login %s failed: %+v", email, errs)
	}
	if !required {
		return tok
	}
	codes := e.enrolTotpWith(tok, "") // the login checked the password
	if e.recovery == nil {
		e.recovery = map[string][]string{}
	}
	e.recovery[email] = codes[1:]
	if tok, _, errs = e.loginCode(email, password, codes[0]); tok == "" {
		e.t.Fatalf("login %s with a recovery code failed: %+v", email, errs)
	}
	return tok
}

// loginCode is the login mutation with a second factor.
func (e *env) loginCode(email, password, code string) (token string, enrolRequired bool, errs []userError) {
	e.t.Helper()
	var out struct {
		Login struct {
			Token                 *string
			TotpEnrolmentRequired bool
			UserErrors            []userError
		}
	}
	e.mustDo("", `mutation($e: String!, $p: String!, $c: String) { login(input: {email: $e, password: $p, totpCode: $c}) {
		token totpEnrolmentRequired userErrors { field code message } } }`,
		vars{"e": email, "p": password, "c": code}, &out)
	if out.Login.Token != nil {
		token = *out.Login.Token
	}
	return token, out.Login.TotpEnrolmentRequired, out.Login.UserErrors
}

// enrolTotp turns two-factor on for the token's principal, whose password
// is testPassword, and returns the recovery codes.
func (e *env) enrolTotp(token string) []string {
	e.t.Helper()
	return e.enrolTotpWith(token, testPassword)
}

// confirmTotp is confirmTotpEnrolment with a code and a current password
// ("" leaves it out).
const confirmTotp = `mutation($c: String!, $p: String) { confirmTotpEnrolment(input: {code: $c, currentPassword: $p}) {
	recoveryCodes userErrors { field code message retryAfter } } }`

// enrolTotpWith is enrolTotp with the current password to give ("" for
// none: the enrol-only token of a login may leave it out).
func (e *env) enrolTotpWith(token, password string) []string {
	e.t.Helper()
	secret := e.startTotp(token)
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	var c struct {
		ConfirmTotpEnrolment struct {
			RecoveryCodes []string
			UserErrors    []userError
		}
	}
	v := vars{"c": code}
	if password != "" {
		v["p"] = password
	}
	e.mustDo(token, confirmTotp, v, &c)
	if len(c.ConfirmTotpEnrolment.RecoveryCodes) != 10 {
		e.t.Fatalf("confirmTotpEnrolment: %+v", c.ConfirmTotpEnrolment)
	}
	return c.ConfirmTotpEnrolment.RecoveryCodes
}

// startTotp starts an enrolment and returns the secret.
func (e *env) startTotp(token string) string {
	e.t.Helper()
	var s struct {
		StartTotpEnrolment struct {
			URL, Secret *string
			UserErrors  []userError
		}
	}
	e.mustDo(token, `mutation { startTotpEnrolment { url secret userErrors { field code message } } }`, nil, &s)
	if s.StartTotpEnrolment.Secret == nil {
		e.t.Fatalf("startTotpEnrolment: %+v", s.StartTotpEnrolment.UserErrors)
	}
	return *s.StartTotpEnrolment.Secret
}

// user creates a user through GraphQL as the given admin and returns its global ID and token.
func (e *env) user(adminToken, email string, role string) (id, token string) {
	e.t.Helper()
	var out struct {
		CreateUser struct {
			User       *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(adminToken, `mutation($e: String!, $r: Role!, $p: String) { createUser(input: {email: $e, name: "Someone", role: $r, password: $p}) { user { id } userErrors { field code message } } }`,
		vars{"e": email, "r": role, "p": testPassword}, &out)
	if out.CreateUser.User == nil {
		e.t.Fatalf("create user %s: %+v", email, out.CreateUser.UserErrors)
	}
	return out.CreateUser.User.ID, e.login(email, testPassword)
}

type vars map[string]any

type userError struct {
	Field      *string
	Code       string
	Message    string
	RetryAfter *int
}

// invalidFields asserts that every user error is INVALID on a field, without
// retryAfter, and returns their fields, comma-separated, in order.
func invalidFields(t *testing.T, ues []userError) string {
	t.Helper()
	var fields []string
	for _, ue := range ues {
		if ue.Code != "INVALID" || ue.Field == nil || ue.RetryAfter != nil {
			t.Fatalf("user error: %+v", ue)
		}
		fields = append(fields, *ue.Field)
	}
	return strings.Join(fields, ",")
}

type gqlError struct {
	Message    string
	Path       []any
	Extensions map[string]any
}

func (g gqlError) code() string { s, _ := g.Extensions["code"].(string); return s }

type response struct {
	status int
	Data   json.RawMessage
	Errors []gqlError
}

// do posts a GraphQL request with an optional bearer token.
func (e *env) do(token, query string, v vars) response {
	e.t.Helper()
	return e.doFrom("", token, query, v)
}

// doFrom is do with an X-Forwarded-For header naming addr, unless addr is
// empty: a client behind a proxy when the handler trusts the test server's
// peer (127.0.0.1) as one.
func (e *env) doFrom(addr, token, query string, v vars) response {
	e.t.Helper()
	req := e.newPost(token, map[string]any{"query": query, "variables": v})
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var r response
	r.status = res.StatusCode
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		e.t.Fatalf("decode response (status %d): %v", res.StatusCode, err)
	}
	return r
}

// newPost is a GraphQL POST request of body (JSON-encoded), with token.
func (e *env) newPost(token string, body any) *http.Request {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/graphql", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// mustDo runs a request that must succeed without GraphQL errors and decodes data into out.
func (e *env) mustDo(token, query string, v vars, out any) {
	e.t.Helper()
	r := e.do(token, query, v)
	if len(r.Errors) > 0 {
		e.t.Fatalf("unexpected errors: %+v\nquery: %s", r.Errors, query)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

// mustFail runs a request that must fail with exactly one GraphQL error of code.
func (e *env) mustFail(token, query string, v vars, code string) gqlError {
	e.t.Helper()
	r := e.do(token, query, v)
	if len(r.Errors) != 1 || r.Errors[0].code() != code {
		e.t.Fatalf("want one %s error, got %+v (data %s)\nquery: %s", code, r.Errors, r.Data, query)
	}
	if strings.Contains(r.Errors[0].Message, "sql") || strings.Contains(r.Errors[0].Message, "pq:") {
		e.t.Fatalf("error leaks internals: %q", r.Errors[0].Message)
	}
	return r.Errors[0]
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// statementsSent is how many statements the env's store has sent so far.
func (e *env) statementsSent() int64 { n, _ := e.statements.Snapshot(); return n }
