package s3_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

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
	tree, err := store.UserHome(acct, user)
	if err != nil {
		t.Fatal(err)
	}
	f, err := tree.Open("f")
	if err != nil {
		t.Fatal(err)
	}

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
