package graph

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
)

// playgroundFiles are GraphiQL and React from the npm registry, pinned and
// gzipped (graph/playground/README.md), and Skiff's page around them.
//
//go:embed playground/index.html playground/*.js playground/*.css playground/*.gz
var playgroundFiles embed.FS

// playgroundCSP keeps the page to its own origin: scripts, styles and the
// API. GraphiQL sets inline styles and uses data: fonts and images.
const playgroundCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"

// playgroundHandler serves GraphiQL at /playground with every asset from
// Skiff itself (no CDN), so it works offline. Gzipped assets are sent as
// they are to clients that accept gzip, and unpacked for the others.
func playgroundHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /playground", func(w http.ResponseWriter, req *http.Request) {
		page, _ := playgroundFiles.ReadFile("playground/index.html")
		w.Header().Set("Content-Security-Policy", playgroundCSP)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(page)
	})
	mux.HandleFunc("GET /playground/assets/{name}", func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		ext := path.Ext(name)
		if strings.Contains(name, "/") || ext != ".js" && ext != ".css" {
			http.NotFound(w, req)
			return
		}
		h := w.Header()
		h.Set("Content-Type", mime.TypeByExtension(ext))
		h.Set("Cache-Control", "public, max-age=86400")
		h.Set("X-Content-Type-Options", "nosniff")
		if b, err := playgroundFiles.ReadFile("playground/" + name); err == nil {
			w.Write(b)
			return
		}
		gz, err := playgroundFiles.ReadFile("playground/" + name + ".gz")
		if err != nil {
			http.NotFound(w, req)
			return
		}
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(req) {
			h.Set("Content-Encoding", "gzip")
			w.Write(gz)
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			http.Error(w, "corrupt asset", http.StatusInternalServerError)
			return
		}
		io.Copy(w, zr)
	})
	return mux
}

func acceptsGzip(req *http.Request) bool {
	for _, part := range strings.Split(req.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
