package graph

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// A client address over its in-flight cap is answered 429 with a reason,
// while another address is served.
func TestInFlightCapPerAddress(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	h := perAddrLimit(clientAddrs{}, 2, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.RemoteAddr, "192.0.2.1:") {
			started.Done()
			<-release
		}
		w.Write([]byte("served"))
	}))
	serve := func(addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader("{}"))
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var done sync.WaitGroup
	for i := range 2 {
		started.Add(1)
		done.Add(1)
		go func() { defer done.Done(); serve("192.0.2.1:" + string(rune('1'+i))) }()
	}
	started.Wait()
	over := serve("192.0.2.1:9")
	if over.Code != http.StatusTooManyRequests || !strings.Contains(over.Body.String(), "too many requests in flight") ||
		!strings.Contains(over.Body.String(), "TOO_MANY_REQUESTS") {
		t.Fatalf("over the cap: %d %s", over.Code, over.Body)
	}
	if other := serve("198.51.100.7:1"); other.Code != http.StatusOK || other.Body.String() != "served" {
		t.Fatalf("another address: %d %s", other.Code, other.Body)
	}
	close(release)
	done.Wait()
	started.Add(1) // the handler counts 192.0.2.1's request (release is closed: it does not block)
	if again := serve("192.0.2.1:10"); again.Code != http.StatusOK {
		t.Fatalf("after the requests finished: %d %s", again.Code, again.Body)
	}
}
