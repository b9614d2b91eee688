package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A body sent a byte a second is cut off at the read timeout instead of
// holding its connection (and handler) forever.
func TestHTTPSlowBodyCutOff(t *testing.T) {
	t.Parallel()
	f := HTTPFlags{ReadHeader: time.Second, Read: time.Second, Write: 5 * time.Second, Idle: time.Minute}
	srv := f.server(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.ReadAll(req.Body)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 10 { // a byte a second, bounded
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
	_, err = io.Copy(io.Discard, c) // returns when the server closes (or resets) the connection
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the slow body was not cut off: %v after %v", err, took)
	}
	if took > 3*time.Second {
		t.Fatalf("cut off after %v; the read timeout is 1s", took)
	}
}

// Connections over the cap are answered 503 with a reason and closed; a
// freed slot is used again.
func TestHTTPConnectionCap(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := HTTPFlags{ReadHeader: 5 * time.Second, Read: 5 * time.Second, Write: 5 * time.Second, Idle: time.Minute}.
		server(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "served\n") }))
	go srv.Serve(limitConns(ln, 2))
	t.Cleanup(func() { srv.Close() })

	get := func(c net.Conn) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err.Error()
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1000))
		return res.Status + " " + string(b)
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	if got := get(a); !strings.Contains(got, "served") {
		t.Fatalf("first connection: %q", got)
	}
	get(b)
	if got := get(dial()); !strings.HasPrefix(got, "503") || !strings.Contains(got, "too many open connections") {
		t.Fatalf("third connection: %q, want 503 too many open connections", got)
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := get(dial())
		if strings.Contains(got, "served") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the freed slot was not reused: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
