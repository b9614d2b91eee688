package graph_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A subscription sent over HTTP POST instead of WebSocket is refused at
// once; it used to wait for the first event, holding the request (and its
// slot among the address's requests in flight) until the write timeout.
func TestSubscriptionOverHTTPIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Do(e.newPost(owner, map[string]any{"query": `subscription { sftpActivity { action } }`}))
	if err != nil {
		t.Fatalf("subscription over POST: %v", err)
	}
	defer res.Body.Close()
	var r response
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) != 1 || r.Errors[0].code() != "SUBSCRIPTION_NEEDS_WEBSOCKET" {
		t.Fatalf("subscription over POST: %+v; want SUBSCRIPTION_NEEDS_WEBSOCKET", r.Errors)
	}
	// A request error: 400 to a client that accepts graphql-response+json.
	res2, r2 := e.post(owner, "application/graphql-response+json", map[string]any{"query": `subscription { sftpActivity { action } }`})
	if res2.StatusCode != http.StatusBadRequest || len(r2.Errors) != 1 || r2.Errors[0].code() != "SUBSCRIPTION_NEEDS_WEBSOCKET" {
		t.Errorf("subscription over POST, graphql-response+json: %d %+v; want 400 and SUBSCRIPTION_NEEDS_WEBSOCKET", res2.StatusCode, r2.Errors)
	}
	// Two operations and no name: the error says what to send.
	_, r3 := e.post(owner, "", map[string]any{"query": `query A { viewer { __typename } } query B { viewer { __typename } }`})
	if len(r3.Errors) != 1 || !strings.Contains(r3.Errors[0].Message, "operationName") {
		t.Errorf("two operations without a name: %+v; want an error naming operationName", r3.Errors)
	}
}
