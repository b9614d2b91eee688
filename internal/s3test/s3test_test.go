package s3test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

// Shared gives each test a bucket of its own on one server: what one test
// stores the other does not see, a test's objects are gone when it ends,
// its Stop leaves the server to the others, and StopShared stops it.
func TestShared(t *testing.T) {
	ctx := context.Background()
	var first *Server
	var dir string
	t.Run("first", func(t *testing.T) {
		first = Shared(t)
		if _, err := first.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(first.Bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte("first's"))}); err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(first.Dir, first.Bucket)
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("the bucket's folder: %v", err)
		}
		first.Stop()
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the first test's bucket is still there after it ended: %v", err)
	}
	second := Shared(t)
	if second.Endpoint != first.Endpoint || second.Bucket == first.Bucket {
		t.Fatalf("second: %s %s; first: %s %s; want one server, two buckets", second.Endpoint, second.Bucket, first.Endpoint, first.Bucket)
	}
	c := second.Client()
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(second.Bucket), Key: aws.String("k")}); err == nil {
		t.Error("the second test's bucket has the first's object")
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(second.Bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte("second's"))}); err != nil {
		t.Fatalf("the shared server after the first test's Stop: %v", err)
	}
	StopShared()
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(second.Bucket), Key: aws.String("k")}); err == nil {
		t.Error("the shared server still answers after StopShared")
	}
	third := Shared(t) // a new server
	if _, err := third.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(third.Bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte("third's"))}); err != nil {
		t.Errorf("Shared after StopShared: %v", err)
	}
	StopShared()
}
