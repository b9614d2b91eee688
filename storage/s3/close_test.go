package s3_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
)

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

	proxy := s3test.StartStallingProxy(t, e.srv)
	opts := e.srv.Options()
	opts.BaseEndpoint = aws.String(proxy.Endpoint())
	store, err := s3.New(awss3.New(opts), s3.Config{Bucket: e.srv.Bucket, Prefix: "skiff", PartSize: s3.MinPartSize, PartsInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, f := openF(t, store)

	proxy.Stall()
	read := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 32<<10), 0)
		read <- err
	}()
	select {
	case <-proxy.Held(): // the read's GET is in flight, and stalls
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
		proxy.Unstall()
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
	proxy := s3test.StartStallingProxy(t, e.srv)
	e.srv.SetEnv(t)
	store, err := s3.Open(context.Background(), s3.Config{Bucket: e.srv.Bucket, Prefix: "skiff", Endpoint: proxy.Endpoint(),
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

	proxy.Stall()
	const want = "moved no data for 300ms"
	within := func(what string, do func() error) {
		t.Helper()
		err := testkit.Within(t, 30*time.Second, what+" from a stalled store", do)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s from a stalled store: %v; want %q, storage.ErrUnavailable", what, err, want)
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
	proxy.Unstall()
	if _, err := tree.Stat("g"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the upload that failed on a stalled store left a file: %v", err)
	}
}
