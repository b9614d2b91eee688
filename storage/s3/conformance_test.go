package s3_test

import (
	"testing"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/storage/storagetest"
)

// TestConformance runs the backend-neutral checks of storage.Tree on the
// S3 store, over one versitygw whose bucket each check gets a prefix of,
// keeping times as skiff serve does (in memory here).
func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client()
	n := 0
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		n++
		store, err := s3.New(client, s3.Config{Bucket: srv.Bucket, Prefix: "conformance/" + string(rune('a'+n%26)) + t.Name(),
			PartSize: s3.MinPartSize, PartsInFlight: 2})
		if err != nil {
			t.Fatal(err)
		}
		store.KeepTimes(storagetest.NewMemTimes())
		return store
	})
}
