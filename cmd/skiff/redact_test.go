package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
)

// URLs lose every password before they are logged: their own, a password
// parameter's, and those of URLs inside their parameters, such as an S3
// storage URL's endpoint; what is not secret stays as written.
func TestRedactedURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:secret@db:5432/skiff?sslmode=disable", "postgres://u:xxxxx@db:5432/skiff?sslmode=disable"},
		{"postgres://u@db/skiff?password=secret&sslmode=disable", "postgres://u@db/skiff?password=xxxxx&sslmode=disable"},
		{"host=db user=u password=secret", "host=db user=u password=xxxxx"},
		{"s3://k:secret@b/p", "s3://k:xxxxx@b/p"},
		{"s3://b/p?endpoint=http://k:secret@127.0.0.1:1", "s3://b/p?endpoint=http://k:xxxxx@127.0.0.1:1"},
		{"s3://b/p?region=r&endpoint=http%3A%2F%2Fk%3Asecret%40s3%3A7070&part_size=8MiB", "s3://b/p?region=r&endpoint=http%3A%2F%2Fk%3Axxxxx%40s3%3A7070&part_size=8MiB"},
		{"s3://b/p?endpoint=http://s3:7070&region=us-east-1", "s3://b/p?endpoint=http://s3:7070&region=us-east-1"},
		{"smtp://u:secret@mx:587?from=skiff@example.com", "smtp://u:xxxxx@mx:587?from=skiff@example.com"},
		{"s3://b:bad-port/p?endpoint=http://k:secret@h", "s3://b:bad-port/p?endpoint=http://k:xxxxx@h"}, // does not parse
		// Passwords with / ? # do not parse as URLs (the host ends at them).
		{"postgres://u:se/cret@db:5432/skiff", "postgres://u:xxxxx@db:5432/skiff"},
		{"postgres://u:se?cret@db/skiff", "postgres://u:xxxxx@db/skiff"},
		{"postgres://u:se#cr:et@db/skiff", "postgres://u:xxxxx@db/skiff"},
		{"s3://b/p?endpoint=http%3A%2F%2Fk%3Ase%2Fcret%40h%3A1%ZZ&region=r", "s3://b/p?endpoint=xxxxx&region=r"}, // a bad escape
		{"s3://b/p?endpoint=http://k:se/cr?et@h:1&x=%ZZ", "s3://b/p?endpoint=http://k:xxxxx@h:1&x=%ZZ"},
	} {
		if got := redacted(c.in); got != c.want || strings.Contains(got, "secret") {
			t.Errorf("redacted(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// The start-up line shows the storage URL without its endpoint's password.
func TestStartLineHidesEndpointPassword(t *testing.T) {
	cmd := parseServe(t, "--storage-url", "s3://b/p?endpoint=http://k:s3secret@127.0.0.1:1")
	var logs testkit.SyncBuffer
	cmd.logStart(slog.New(slog.NewTextHandler(&logs, nil)), migrateAuto)
	if strings.Contains(logs.String(), "s3secret") || !strings.Contains(logs.String(), "endpoint=http://k:xxxxx@127.0.0.1:1") {
		t.Errorf("starting skiff line:\n%s", logs.String())
	}
}
