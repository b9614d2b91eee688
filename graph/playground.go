package graph

import (
	"embed"
	"net/http"
	"path"
	"strings"
)

// playgroundFiles are Skiff's own GraphQL explorer: a page, its script and
// styles, and the schema query its Schema pane sends. No framework and no
// CDN: the page works offline, and the compression middleware gzips it.
//
//go:embed playground/index.html playground/playground.js playground/playground.css playground/schema.graphql
var playgroundFiles embed.FS

// playgroundCSP keeps the page to its own origin: its script, its styles
// and the API. No inline script or style runs.
const playgroundCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// playgroundAssets maps the names served under /playground/assets/ to their
// content types.
var playgroundAssets = map[string]string{
	"playground.js":  "text/javascript; charset=utf-8",
	"playground.css": "text/css; charset=utf-8",
	"schema.graphql": "application/graphql; charset=utf-8",
}

// playgroundHandler serves the explorer at /playground and its files under
// /playground/assets/, and nothing else.
func playgroundHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /playground", func(w http.ResponseWriter, req *http.Request) {
		servePlaygroundFile(w, "index.html", "text/html; charset=utf-8", "no-cache")
	})
	mux.HandleFunc("GET /playground/assets/{name}", func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		typ, ok := playgroundAssets[name]
		if !ok || strings.ContainsAny(name, `/\`) {
			http.NotFound(w, req)
			return
		}
		// Revalidated on every load, so a new release is picked up at once.
		servePlaygroundFile(w, name, typ, "no-cache")
	})
	return mux
}

func servePlaygroundFile(w http.ResponseWriter, name, contentType, cacheControl string) {
	b, err := playgroundFiles.ReadFile(path.Join("playground", name))
	if err != nil { // only names embedded above reach here
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Security-Policy", playgroundCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}
