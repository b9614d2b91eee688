package s3_test

import (
	"context"
	"sync"
	"testing"

	"github.com/skiffhq/skiff/storage/s3"
)

// A burst of requests keeps its connections for the next one: every
// upload's parts and every download's read-ahead go to the one endpoint at
// once, and a client that kept only a few idle connections (Go's and the
// AWS SDK's default is 10 per host) would close the rest as the burst ends
// and open them again, with their handshakes, for the next.
func TestABurstOfRequestsKeepsItsConnections(t *testing.T) {
	e := newEnv(t, s3.Config{})
	e.put(t, "f", []byte("data"))
	proxy := startStallingProxy(t, e.srv.Endpoint[len("http://"):])
	// Open takes its credentials from the standard AWS sources.
	t.Setenv("AWS_ACCESS_KEY_ID", e.srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.srv.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_CA_BUNDLE", "")
	store, err := s3.Open(context.Background(), s3.Config{Bucket: e.srv.Bucket, Prefix: "skiff",
		Endpoint: "http://" + proxy.addr(), Region: e.srv.Region, PathStyle: true})
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
		proxy.stall()
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := tree.Stat("f"); err != nil {
					t.Error(err)
				}
			})
		}
		for range n {
			<-proxy.held
		}
		proxy.unstall()
		wg.Wait()
	}
	burst()
	first := proxy.accepted.Load()
	if first < n {
		t.Fatalf("%d requests at once used %d connections", n, first)
	}
	burst()
	if more := proxy.accepted.Load() - first; more > 0 {
		t.Fatalf("the second burst of %d requests opened %d new connections, want none: the first burst's were closed", n, more)
	}
}
