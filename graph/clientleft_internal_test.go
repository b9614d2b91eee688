package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/lib/pq"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"github.com/vektah/gqlparser/v2/ast"
)

// A request whose client went away mid-way (an aborted login, a closed
// tab) is not an internal error: the database call it was making fails
// with the request's own cancellation, and logging that at ERROR, counted
// as INTERNAL, would let anyone fill the log and trip an operator's alert
// on internal errors. It is logged at info level and counted as CANCELED.
// The same failure while the client waits is still an internal error.
func TestAClientThatLeftIsNoInternalError(t *testing.T) {
	begin := &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("begin: %w", context.Canceled)}
	// A statement running when the context ended: lib/pq's cancel request
	// comes back as PostgreSQL's query_canceled.
	statement := &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: &pq.Error{Code: "57014", Message: "canceling statement due to user request"}}
	for _, tc := range []struct {
		name      string
		dbErr     error
		left      bool
		wantLevel string
		wantCode  string
		// The token check's HTTP status: not a server error (5xx) in the
		// access log and the metrics when no one was waiting for it.
		wantStatus int
	}{
		{"the client left", begin, true, "level=INFO", "CANCELED", 499},
		{"the client left mid-statement", statement, true, "level=INFO", "CANCELED", 499},
		{"the client waits", begin, false, "level=ERROR", "INTERNAL", 500},
		{"a statement timeout while the client waits", statement, false, "level=ERROR", "INTERNAL", 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testkit.SyncBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.left {
				cancel()
			}
			ri := &requestInfo{}
			ctx = context.WithValue(ctx, requestInfoKey{}, ri)

			gerr := presentError(ctx, log, tc.dbErr)
			if got := gerr.Extensions["code"]; got != tc.wantCode {
				t.Errorf("presented code %v, want %s", got, tc.wantCode)
			}
			if len(ri.codes) != 1 || ri.codes[0] != tc.wantCode {
				t.Errorf("counted codes %v, want [%s]", ri.codes, tc.wantCode)
			}
			if !strings.Contains(logs.String(), tc.wantLevel) {
				t.Errorf("log:\n%s", logs.String())
			}

			// Before GraphQL runs: the token check's database call.
			logs = &testkit.SyncBuffer{}
			log = slog.New(slog.NewTextHandler(logs, nil))
			ri.codes = nil
			rec := httptest.NewRecorder()
			writeInternalError(ctx, rec, log, "authenticate", errors.Join(errors.New("look up token"), tc.dbErr))
			if len(ri.codes) != 1 || ri.codes[0] != tc.wantCode {
				t.Errorf("token check: counted codes %v, want [%s]", ri.codes, tc.wantCode)
			}
			if rec.Code != tc.wantStatus {
				t.Errorf("token check: HTTP %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := outcomeOf(ri, rec.Code); got == "internal_error" && tc.left {
				t.Errorf("token check: counted in the metrics as %s", got)
			}
			if !strings.Contains(logs.String(), tc.wantLevel) {
				t.Errorf("token check: log:\n%s", logs.String())
			}
		})
	}
}

// The same for a subscription whose token is checked again as it starts:
// a client that left meanwhile is counted as CANCELED, not INTERNAL.
func TestASubscriptionWhoseClientLeftIsNoInternalError(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	g := &subscriptionGuard{max: 1, log: slog.New(slog.NewTextHandler(logs, nil)),
		auth: func(ctx context.Context, token string) (*tenant.Principal, error) {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("look up token: %w", ctx.Err())}
		}}
	ri := &requestInfo{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), overWebSocketKey{}, true))
	ctx = context.WithValue(ctx, requestInfoKey{}, ri)
	ctx = withBearer(tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindUser, ID: "u"}), "skf_token")
	ctx = graphql.WithOperationContext(ctx, &graphql.OperationContext{Operation: &ast.OperationDefinition{Operation: ast.Subscription}})
	cancel() // the client left
	resp := g.around(ctx, func(context.Context) graphql.ResponseHandler {
		t.Fatal("the subscription ran")
		return nil
	})(ctx)
	if len(ri.codes) != 1 || ri.codes[0] != "CANCELED" {
		t.Errorf("counted codes %v, want [CANCELED]; answer %v", ri.codes, resp.Errors)
	}
	if got := logs.String(); strings.Contains(got, "level=ERROR") || !strings.Contains(got, "the client left") {
		t.Errorf("log:\n%s", got)
	}
}
