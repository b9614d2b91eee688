package s3test

import (
	"bytes"
	"context"
	"io"
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
