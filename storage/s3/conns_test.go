package s3_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage/s3"
)

// A burst of requests keeps its connections for the next one: every
// upload's parts and every download's read-ahead go to the one endpoint at
// once, and a client that kept only a few idle connections (Go's and the
// AWS SDK's default is 10 per host) would close the rest as the burst ends
// and open them again, with their handshakes, for the next.
func TestABurstOfRequestsKeepsItsConnections(t *testing.T) {
	e := newEnv(t, s3.Config{})
	e.put(t, "f.bin", []byte("data")) // a name with an extension: one HEAD per Stat
	proxy := s3test.StartStallingProxy(t, e.srv)
	e.srv.SetEnv(t)
	store, err := s3.Open(context.Background(), s3.Config{Bucket: e.srv.Bucket, Prefix: "skiff",
		Endpoint: proxy.Endpoint(), Region: e.srv.Region, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := store.UserHome(acct, user)
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	// burst makes n requests at once: the proxy holds each until all n
	// are in, so that each has a connection of its own.
	burst := func() {
		proxy.Stall()
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := tree.Stat("f.bin"); err != nil {
					t.Error(err)
				}
			})
		}
		for range n {
			<-proxy.Held()
		}
		proxy.Unstall()
		wg.Wait()
	}
	burst()
	first := proxy.Accepted()
	if first < n {
		t.Fatalf("%d requests at once used %d connections", n, first)
	}
	burst()
	if more := proxy.Accepted() - first; more > 0 {
		t.Fatalf("the second burst of %d requests opened %d new connections, want none: the first burst's were closed", n, more)
	}
}

// Most stores are reached over HTTPS, some with a private certificate
// authority given in AWS_CA_BUNDLE: Open takes it (the store's HTTP client
// must stay one the SDK can hand the bundle to), and without it the start-up
// check refuses the store's certificate.
func TestOpenOverHTTPSWithACABundle(t *testing.T) {
	srv := s3test.StartTLS(t)
	srv.SetEnv(t)
	t.Setenv("AWS_CA_BUNDLE", "") // first without it
	cfg := s3.Config{Bucket: srv.Bucket, Prefix: "skiff", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true}
	ctx := context.Background()

	store, err := s3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Check(ctx); !errors.Is(err, s3.ErrCertificate) || !strings.Contains(err.Error(), "AWS_CA_BUNDLE") {
		t.Fatalf("a store whose certificate cannot be verified passed the check: %v", err)
	}

	t.Setenv("AWS_CA_BUNDLE", srv.CAFile)
	store, err = s3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
	tree, err := store.UserHome(acct, user)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, store: store, tree: tree.(*s3.Tree)}
	data := randBytes(2*s3.MinPartSize + 1) // a multipart upload
	e.put(t, "f", data)
	if got := e.get(t, "f"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, not the %d written", len(got), len(data))
	}
}
