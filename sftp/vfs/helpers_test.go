package vfs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"

	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/sftp/vfs"
)

const (
	accountID = "5b0e6a52-6a0c-4f4e-9a3c-1f8f2d6c0a11"
	userID    = "0d3c8e2a-77f1-4c1e-8d0b-5a6f9e2b4c33"
	folderA   = "a1a1a1a1-0000-4000-8000-000000000001"
	folderB   = "b2b2b2b2-0000-4000-8000-000000000002"
)

// clock is a settable clock for cache expiry.
type clock = testkit.Clock

func newClock() *clock { return testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// gate is a Gate whose answer a test can change; it counts calls.
type gate struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (g *gate) Check(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	return g.err
}

func (g *gate) set(err error) {
	g.mu.Lock()
	g.err = err
	g.mu.Unlock()
}

// shares is a Shares whose folders a test can change; it counts calls.
type shares struct {
	mu      sync.Mutex
	folders []vfs.SharedFolder
	err     error
	calls   int
	// fetched, if set, runs as each call returns its answer.
	fetched func()
}

func (s *shares) SharedFolders(context.Context) ([]vfs.SharedFolder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	got := append([]vfs.SharedFolder(nil), s.folders...)
	if s.fetched != nil {
		s.fetched()
	}
	return got, s.err
}

func (s *shares) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *shares) set(folders ...vfs.SharedFolder) {
	s.mu.Lock()
	s.folders = folders
	s.mu.Unlock()
}

// env is one storage base, one session and a pkg/sftp client talking to it
// over an in-memory pipe.
type env struct {
	t       testing.TB
	dir     string // holds the storage base and the sentinel outside it
	base    string // storage base
	store   testStore
	clock   *clock
	gate    *gate
	shares  *shares
	changed *vfs.Generation // the session's SharesChanged, as TenantBackend gives one
	session *vfs.Session
	client  *sftp.Client
	conn    net.Conn // the client's end of the pipe
	served  chan error
	logs    *syncBuffer // what the session logged
}

type syncBuffer = testkit.SyncBuffer

type option func(*vfs.Config)

func jailed(c *vfs.Config) { c.Jailed = true }

func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	dir := t.TempDir()
	return newEnvAt(t, dir, filepath.Join(dir, "data"), opts...)
}

// newEnvAt is newEnv with the storage base at base, inside dir.
func newEnvAt(t testing.TB, dir, base string, opts ...option) *env {
	t.Helper()
	e := &env{
		t: t, dir: dir, base: base,
		clock: newClock(), gate: &gate{}, shares: &shares{}, changed: &vfs.Generation{}, logs: &syncBuffer{},
	}
	var err error
	if e.store, err = openTestStore(t, e.base); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	cfg := vfs.Config{
		AccountID: accountID, UserID: userID,
		Storage: e.store, Gate: e.gate, Shares: e.shares, SharesChanged: e.changed,
		CacheTTL: time.Second, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if e.session, err = vfs.NewSession(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	e.connect()
	t.Cleanup(e.close)
	return e
}

func (e *env) connect(opts ...sftp.ClientOption) {
	e.t.Helper()
	server, client := net.Pipe()
	e.conn = client
	e.served = make(chan error, 1)
	go func() { e.served <- e.session.Serve(server) }()
	c, err := sftp.NewClientPipe(client, client, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.client = c
}

// close ends the client, waits for Serve and closes the session; a test
// may call it before its cleanup does.
func (e *env) close() {
	if e.client != nil {
		e.client.Close()
		e.client = nil
	}
	e.conn.Close()
	if e.served != nil {
		if err := <-e.served; err != nil {
			e.t.Errorf("Serve: %v", err)
		}
		e.served = nil
	}
	if err := e.session.Close(); err != nil {
		e.t.Errorf("session Close: %v", err)
	}
	// Every refusal a client can provoke is expected; an internal failure
	// in the log means an error went unclassified.
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") {
		e.t.Errorf("the session logged internal failures:\n%s", logs)
	}
}

// home is the user's home on disk.
func (e *env) home() string {
	return filepath.Join(e.base, accountID, "users", userID)
}

// folder is a project folder on disk, created if needed.
func (e *env) folder(id string) string {
	e.t.Helper()
	r, err := e.store.ProjectFolder(accountID, id)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Close()
	return filepath.Join(e.base, accountID, "folders", id)
}

func mustWrite(t testing.TB, name, content string) {
	t.Helper()
	if tr, rel, ok := s3Path(name); ok {
		s3Write(t, tr, rel, content)
		return
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

// homeMade reports whether the session made the user's home: on the disk
// its folder, on S3 (where a tree's top always exists) anything in it.
func homeMade(e *env) bool {
	if !onS3 {
		return exists(e.home())
	}
	entries, _ := readDirPath(e.home())
	return len(entries) > 0
}

// mustMkdir makes the folder name (its parent exists), through the
// storage on S3.
func mustMkdir(t testing.TB, name string) {
	t.Helper()
	var err error
	if tr, rel, ok := s3Path(name); ok {
		err = tr.Mkdir(rel)
	} else {
		err = os.Mkdir(name, 0o750)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, name string) string {
	t.Helper()
	var b []byte
	var err error
	if tr, rel, ok := s3Path(name); ok {
		b, err = s3Read(tr, rel)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(name string) bool {
	if tr, rel, ok := s3Path(name); ok {
		_, err := tr.Lstat(rel)
		return err == nil
	}
	_, err := os.Lstat(name)
	return err == nil
}

// put uploads content through the client and checks the close.
func (e *env) put(p, content string) error {
	f, err := e.client.Create(p)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte(content)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// get downloads a whole file through the client.
func (e *env) get(p string) (string, error) {
	f, err := e.client.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

// statusCode is the SFTP status a client error carries: os.ErrNotExist and
// os.ErrPermission stand for their codes, as pkg/sftp's client maps them.
func statusCode(err error) string {
	var se *sftp.StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	case errors.As(err, &se):
		return se.FxCode().Error()
	}
	return "other: " + err.Error()
}

func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}
