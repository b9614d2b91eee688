package graph_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/internal/testkit"
)

// logEnv is an env whose handler logs JSON into a buffer, trusting the
// test client (127.0.0.1) as a reverse proxy.
func logEnv(t *testing.T) (*env, *testkit.SyncBuffer) {
	var logs testkit.SyncBuffer
	e := newEnvWith(t, func(c *graph.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	return e, &logs
}

// postWith sends a GraphQL request with the given headers and returns the
// response's status and X-Request-ID.
func (e *env) postWith(token, body string, header map[string]string) (int, string, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("X-Request-ID"), string(b)
}

// logLines returns the JSON log lines with msg.
func logLines(t *testing.T, logs *testkit.SyncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if v["msg"] == msg {
			out = append(out, v)
		}
	}
	return out
}

// Each GraphQL request gets one INFO line naming the client (through the
// trusted proxy), the account and user, the operation, the status, the
// outcome and the duration in seconds; a valid incoming X-Request-ID is
// kept, an invalid one replaced.
func TestAccessLog(t *testing.T) {
	e, logs := logEnv(t)
	accountID, token := e.account("Logged", "owner@logged.example")
	status, rid, _ := e.postWith(token, `{"query":"query Who { viewer { __typename } }","operationName":"Who"}`,
		map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "lb-7f3a.1:2_x"})
	if status != http.StatusOK || rid != "lb-7f3a.1:2_x" {
		t.Fatalf("status %d, X-Request-ID %q", status, rid)
	}
	var line map[string]any
	for _, l := range logLines(t, logs, "http request") {
		if l["request_id"] == rid {
			line = l
		}
	}
	if line == nil {
		t.Fatalf("no access log line for %s:\n%s", rid, logs.String())
	}
	want := map[string]any{"level": "INFO", "client": "203.0.113.9", "account": accountID, "principal": "user",
		"operation": "Who", "operation_type": "query", "status": float64(200), "outcome": "ok", "path": "/graphql"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if u, _ := line["user"].(string); u == "" {
		t.Error("no user")
	}
	if d, ok := line["duration"].(float64); !ok || d < 0 || d > 60 {
		t.Errorf("duration %v is not seconds", line["duration"])
	}

	for _, bad := range []string{"has space", strings.Repeat("a", 129), "quote\"d", "semi;colon"} {
		_, rid, _ := e.postWith("", `{"query":"{ __typename }"}`, map[string]string{"X-Request-ID": bad})
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(rid) {
			t.Errorf("X-Request-ID %q came back as %q, want a new one", bad, rid)
		}
	}

	_, rid, _ = e.postWith("", `{"query":"{ nosuchfield }"}`, nil)
	for _, l := range logLines(t, logs, "http request") {
		if l["request_id"] == rid && (l["outcome"] != "error" || l["errors"] != "GRAPHQL_VALIDATION_FAILED" || l["principal"] != "anonymous") {
			t.Errorf("failed request logged as %v", l)
		}
	}
}

// An internal error before GraphQL runs (the token cannot be checked: the
// database is gone) is answered 500 with the request ID, and logged with it.
func TestInternalErrorBeforeGraphQLIsLogged(t *testing.T) {
	e, logs := logEnv(t)
	_, token := e.account("Down", "owner@down.example")
	if err := e.svc.DB.X.Close(); err != nil {
		t.Fatal(err)
	}
	status, rid, body := e.postWith(token, `{"query":"{ __typename }"}`, nil)
	if status != http.StatusInternalServerError || !strings.Contains(body, rid) || !strings.Contains(body, `"code":"INTERNAL"`) {
		t.Fatalf("status %d, body %s", status, body)
	}
	found := false
	for _, l := range logLines(t, logs, "internal error") {
		if l["request_id"] == rid && l["level"] == "ERROR" && l["err"] != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("the internal error of request %s was not logged:\n%s", rid, logs.String())
	}
}
