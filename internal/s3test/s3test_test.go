package s3test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestServer starts a server, round-trips an object, and stops it. .ci/run
// runs it first, with a long timeout, so that the binary is built once
// before the packages that need it run in parallel.
func TestServer(t *testing.T) {
	srv := Start(t)
	ctx := context.Background()
	c := srv.Client()
	want := []byte("hello, object")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("a/b.txt"), Body: bytes.NewReader(want)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	srv.Stop()
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("a/b.txt")}); err == nil {
		t.Fatal("server still answers after Stop")
	}
}

// TestServerKeepsConnectionsAlive checks that requests after the first
// reuse its connection, as S3 services allow: a server that closes every
// connection makes each request pay for a new one.
func TestServerKeepsConnectionsAlive(t *testing.T) {
	srv := Start(t)
	var dials atomic.Int32
	opts := srv.Options()
	opts.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	c := s3.New(opts)
	ctx := context.Background()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte("data"))}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("k")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, out.Body); err != nil {
			t.Fatal(err)
		}
		out.Body.Close()
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("6 requests one after another opened %d connections, want 1", n)
	}
}
