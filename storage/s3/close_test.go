package s3_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
)

// stallingProxy forwards TCP connections to a real S3 server and, once
// stalled, holds every request it receives from then on (the store stops
// answering) until released.
type stallingProxy struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	stalled bool
	release chan struct{} // closed to let held requests through
	held    chan struct{} // told of each request held

	accepted atomic.Int32      // connections accepted
	open     map[net.Conn]bool // connections being served, closed at cleanup
}

func startStallingProxy(t *testing.T, upstream string) *stallingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingProxy{ln: ln, upstream: upstream, release: make(chan struct{}), held: make(chan struct{}, 100), open: map[net.Conn]bool{}}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.unstall()
		p.mu.Lock()
		for c := range p.open { // idle ones the client keeps for reuse
			c.Close()
		}
		p.mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			p.mu.Lock()
			p.open[c] = true
			p.mu.Unlock()
			conns.Go(func() { p.serve(c) })
		}
	}()
	return p
}

func (p *stallingProxy) addr() string { return p.ln.Addr().String() }

func (p *stallingProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

func (p *stallingProxy) unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.release)
		p.release = make(chan struct{})
	}
}

func (p *stallingProxy) serve(c net.Conn) {
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.open, c)
		p.mu.Unlock()
	}()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		_, _ = io.Copy(c, up)
		c.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stalled, release := p.stalled, p.release
			p.mu.Unlock()
			if stalled {
				p.held <- struct{}{}
				<-release
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// openF opens the file "f" of the test user's home in store.
func openF(t *testing.T, store *s3.Store) (storage.Tree, storage.File) {
	t.Helper()
	tree, err := store.UserHome(acct, user)
	if err != nil {
		t.Fatal(err)
	}
	f, err := tree.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	return tree, f
}

// Closing a file being read returns at once even when the store has stopped
// answering: the GETs in flight are cancelled rather than waited for.
func TestCloseDoesNotWaitForAStalledStore(t *testing.T) {
	e := newEnv(t, s3.Config{})
	data := randBytes(3 * mib)
	e.put(t, "f", data)

	proxy := startStallingProxy(t, e.srv.Endpoint[len("http://"):])
	opts := e.srv.Options()
	opts.BaseEndpoint = aws.String("http://" + proxy.addr())
	store, err := s3.New(awss3.New(opts), s3.Config{Bucket: e.srv.Bucket, Prefix: "skiff", PartSize: s3.MinPartSize, PartsInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, f := openF(t, store)

	proxy.stall()
	read := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 32<<10), 0)
		read <- err
	}()
	select {
	case <-proxy.held: // the read's GET is in flight, and stalls
	case <-time.After(30 * time.Second):
		t.Fatal("the read sent no request")
	}

	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Close waited for the stalled store")
		proxy.unstall()
		<-closed
	}
	select {
	case err := <-read:
		if err == nil {
			t.Error("the read in flight succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Error("the read in flight did not end with Close")
	}
	if _, err := f.ReadAt(make([]byte, 10), 0); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("a read after Close = %v, want an error", err)
	}
}

// A store that accepts requests and then stops answering fails them once
// they have moved no data for the stall timeout (and the SDK's retries
// have stalled too): a read and an upload get an error rather than
// waiting for ever, and the upload keeps nothing.
func TestAStalledStoreFailsRequestsAfterTheStallTimeout(t *testing.T) {
	e := newEnv(t, s3.Config{})
	data := randBytes(3 * mib)
	e.put(t, "f", data)
	proxy := startStallingProxy(t, e.srv.Endpoint[len("http://"):])
	for _, kv := range e.srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	store, err := s3.Open(context.Background(), s3.Config{Bucket: e.srv.Bucket, Prefix: "skiff", Endpoint: "http://" + proxy.addr(),
		Region: e.srv.Region, PathStyle: true, PartSize: s3.MinPartSize, PartsInFlight: 1, StallTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tree, f := openF(t, store)
	defer f.Close()
	up, err := tree.Create("g", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()

	proxy.stall()
	const want = "moved no data for 300ms"
	within := func(what string, do func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- do() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, storage.ErrUnavailable) {
				t.Errorf("%s from a stalled store: %v; want %q, storage.ErrUnavailable", what, err, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s from a stalled store still waited after 30 s", what)
		}
	}
	within("a read", func() error {
		_, err := f.ReadAt(make([]byte, 32<<10), 0)
		return err
	})
	within("an upload", func() error {
		if _, err := up.WriteAt(randBytes(6*mib), 0); err != nil {
			return err
		}
		return up.Commit()
	})
	proxy.unstall()
	if _, err := tree.Stat("g"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the upload that failed on a stalled store left a file: %v", err)
	}
}
