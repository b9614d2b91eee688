package s3test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The server Shared gives buckets of. Starting a versitygw takes a few
// tenths of a second; a package whose every test (or every case of a
// table) has a store of its own would spend most of its time on that.
var shared struct {
	mu  sync.Mutex
	srv *Server // nil until the first Shared, or after StopShared
	err error   // why it could not be started, for every later caller
}

// Shared returns a bucket of t's own on a server that the tests of the
// binary share: the same fields as Start's, for a server started by the
// first call. The bucket's contents are removed when t ends. The server is
// not t's to stop (its Stop does nothing): the package's TestMain calls
// StopShared after m.Run, or the server outlives the test binary. A test
// that stops its server, or needs one of its own, uses Start.
//
// It skips t as Start does if no binary can be had.
func Shared(t testing.TB) *Server {
	t.Helper()
	srv, err := sharedServer()
	if err != nil {
		t.Skipf("s3test: no S3 server (versitygw %s): %v", Version, err)
	}
	b := &Server{Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Bucket: "skiff-" + randomHex(6), Dir: srv.Dir}
	if _, err := b.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b.Bucket)}); err != nil {
		t.Fatalf("s3test: create bucket on the shared server: %v", err)
	}
	t.Cleanup(func() {
		// Its objects are files under the server's directory (the posix
		// backend): removed there, as nothing asks for them any more.
		_ = os.RemoveAll(filepath.Join(b.Dir, b.Bucket))
	})
	return b
}

func sharedServer() (*Server, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		select {
		case <-shared.srv.done: // it died: start another
			shared.srv = nil
		default:
			return shared.srv, nil
		}
	}
	if shared.err != nil {
		return nil, shared.err
	}
	bin, err := Binary()
	if err != nil {
		shared.err = err
		return nil, err
	}
	dir, err := os.MkdirTemp("", "s3test-shared-")
	if err != nil {
		return nil, err
	}
	srv, err := Launch(bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	shared.srv = srv
	return srv, nil
}

// StopShared stops the server of Shared, if one was started, and removes
// its directory. Call it from TestMain after m.Run.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		return
	}
	shared.srv.stop()
	if err := os.RemoveAll(shared.srv.Dir); err != nil {
		fmt.Fprintln(os.Stderr, "s3test:", err)
	}
	shared.srv = nil
}
