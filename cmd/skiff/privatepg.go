package main

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/skiffhq/skiff/internal/pgserver"
)

// runningPrivate is the port of the private PostgreSQL that already runs
// on pgData — one a `skiff serve` (or another command) on the same
// --data-dir started — or 0 when none does. It is Skiff's own server only
// if its lock file (postmaster.pid: the port on line 4, the first listen
// address on line 6) says it listens where internal/pgserver makes it
// listen, 127.0.0.1, and the server found there answers, to its trusted
// superuser, that its data directory is pgData.
func runningPrivate(ctx context.Context, pgData string) int {
	abs, err := filepath.Abs(pgData)
	if err != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(abs, "postmaster.pid"))
	if err != nil {
		return 0
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 6 || strings.TrimSpace(lines[5]) != "127.0.0.1" {
		return 0
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil || port <= 0 || port > 65535 {
		return 0
	}
	db, err := sql.Open("postgres", privateURL(pgserver.Superuser, port, "postgres")+"&connect_timeout=5")
	if err != nil {
		return 0
	}
	defer db.Close()
	var dir string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil || !sameDir(dir, abs) {
		return 0
	}
	return port
}

// privateURL is a URL of the private PostgreSQL on port, as
// pgserver.Server.RoleURL makes them: it trusts connections from
// 127.0.0.1, so no password.
func privateURL(role string, port int, dbname string) string {
	u := url.URL{Scheme: "postgres", User: url.User(role), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path: "/" + dbname, RawQuery: "sslmode=disable"}
	return u.String()
}

func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}
