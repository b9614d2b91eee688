package s3test

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// StallingProxy forwards TCP connections to an S3 server and, once
// stalled, holds every request it receives from then on (the store stops
// answering) until released. It works at the TCP level, so over HTTP and
// HTTPS alike.
type StallingProxy struct {
	ln       net.Listener
	upstream string // host:port
	scheme   string // the server's: http or https

	mu      sync.Mutex
	stalled bool
	release chan struct{} // closed to let held requests through
	held    chan struct{} // told of each request held

	accepted atomic.Int32      // connections accepted
	open     map[net.Conn]bool // connections being served, closed at cleanup
}

// StartStallingProxy starts a proxy on loopback to srv, not stalled. It
// stops when the test ends.
func StartStallingProxy(t testing.TB, srv *Server) *StallingProxy {
	t.Helper()
	scheme, upstream, ok := strings.Cut(srv.Endpoint, "://")
	if !ok {
		t.Fatalf("s3test: endpoint %q has no scheme", srv.Endpoint)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &StallingProxy{ln: ln, upstream: upstream, scheme: scheme, release: make(chan struct{}), held: make(chan struct{}, 100), open: map[net.Conn]bool{}}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.Unstall()
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

// Endpoint is the server's endpoint through the proxy, for a client's
// BaseEndpoint or a storage URL's endpoint.
func (p *StallingProxy) Endpoint() string { return p.scheme + "://" + p.ln.Addr().String() }

// Accepted is how many connections the proxy has accepted.
func (p *StallingProxy) Accepted() int32 { return p.accepted.Load() }

// Held receives once for each request (each read from a client) the proxy
// holds while stalled. It buffers 100.
func (p *StallingProxy) Held() <-chan struct{} { return p.held }

// Stall holds every request from now on.
func (p *StallingProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

// Unstall forwards again, the held requests first.
func (p *StallingProxy) Unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.release)
		p.release = make(chan struct{})
	}
}

func (p *StallingProxy) serve(c net.Conn) {
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
				select {
				case p.held <- struct{}{}:
				default: // nobody counts past the buffer
				}
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
