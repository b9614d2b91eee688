package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A `docker compose exec` whose output or input is redirected or piped must
// run without a terminal (-T): with one, docker allocates a TTY, which
// turns the newlines of a binary pg_dump into CRLF and the dump unusable.
func TestComposeExecRedirectsWithoutTerminal(t *testing.T) {
	files := []string{filepath.Join("..", "..", "docker-compose.yml"), filepath.Join("..", "..", "README.md")}
	docs, _ := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	exec := regexp.MustCompile(`docker[- ]compose\s+exec\s+(.*)`)
	checked := 0
	for _, f := range append(files, docs...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			m := exec.FindStringSubmatch(line)
			if m == nil || !strings.ContainsAny(m[1], "<>|") {
				continue
			}
			checked++
			if !regexp.MustCompile(`(^|\s)(-T|--no-TTY)\s`).MatchString(m[1]) {
				t.Errorf("%s: %s: redirected without -T", f, strings.TrimSpace(line))
			}
		}
	}
	if checked == 0 {
		t.Error("no redirected docker compose exec found: docker-compose.yml's backup command moved?")
	}
}
