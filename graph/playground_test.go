package graph_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/graph"
)

// The playground works offline: its page names only Skiff's own assets,
// each served (gzipped or not) with the bytes its integrity hash pins, and
// it keeps the Authorization header out of the browser's storage.
func TestPlaygroundIsSelfContained(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.Playground = true })
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/playground", nil)
	res, page := e.httpDo(req)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/playground: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("CSP: %q", csp)
	}
	if bytes.Contains(page, []byte("//")) && regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`).Match(page) {
		t.Fatalf("the page loads something from another origin:\n%s", page)
	}
	refs := regexp.MustCompile(`(src|href)="([^"]*)"(?: integrity="sha256-([^"]*)")?`).FindAllSubmatch(page, -1)
	if len(refs) < 5 {
		t.Fatalf("found %d assets in:\n%s", len(refs), page)
	}
	pinned := 0
	for _, ref := range refs {
		url, integrity := string(ref[2]), string(ref[3])
		if !strings.HasPrefix(url, "/") || strings.HasPrefix(url, "//") {
			t.Fatalf("asset %q is not same-origin", url)
		}
		var bodies [][]byte
		for _, enc := range []string{"gzip", ""} {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+url, nil)
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			res, body := e.httpDo(req)
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") == "" {
				t.Fatalf("%s (Accept-Encoding %q): %d %q", url, enc, res.StatusCode, res.Header.Get("Content-Type"))
			}
			if res.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("%s: %v", url, err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("%s: %v", url, err)
				}
			} else if enc == "" && res.Header.Get("Content-Encoding") != "" {
				t.Fatalf("%s encoded as %q for a client that accepts none", url, res.Header.Get("Content-Encoding"))
			}
			bodies = append(bodies, body)
		}
		if !bytes.Equal(bodies[0], bodies[1]) {
			t.Fatalf("%s differs with and without gzip", url)
		}
		if integrity != "" {
			sum := sha256.Sum256(bodies[0])
			if got := base64.StdEncoding.EncodeToString(sum[:]); got != integrity {
				t.Fatalf("%s: sha256-%s, the page pins sha256-%s", url, got, integrity)
			}
			pinned++
		}
		if strings.HasSuffix(url, "/playground.js") {
			if !bytes.Contains(bodies[0], []byte("shouldPersistHeaders: false")) || bytes.Contains(bodies[0], []byte("localStorage")) {
				t.Fatalf("playground.js may store the token:\n%s", bodies[0])
			}
			if !bytes.Contains(bodies[0], []byte("location.origin + '/graphql'")) {
				t.Fatalf("playground.js does not call this server's API:\n%s", bodies[0])
			}
		}
	}
	if pinned != 4 { // GraphiQL's script and styles, React, ReactDOM
		t.Fatalf("%d assets pinned by hash, want 4", pinned)
	}
	// Nothing else is served from the playground's assets.
	for _, url := range []string{"/playground/assets/index.html", "/playground/assets/README.md", "/playground/assets/nope.js", "/playground/assets/..%2fserver.go"} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+url, nil)
		if res, _ := e.httpDo(req); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", url, res.StatusCode)
		}
	}
}
