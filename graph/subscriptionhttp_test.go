package graph_test

import (
	"encoding/json"
	"net/http"
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
}
