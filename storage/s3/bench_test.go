package s3_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage/s3"
)

// BenchmarkSmallUploads uploads 16 KiB files one after another with the
// default part size (each upload takes a part buffer from the pool) to a
// versitygw on loopback, and reports the test process's CPU per upload
// beside the time (the server's CPU is not in it).
//
//	go test -run '^$' -bench SmallUploads -benchtime 3s -count 3 ./storage/s3
func BenchmarkSmallUploads(b *testing.B) {
	srv := s3test.Shared(b)
	store, err := s3.New(srv.Client(), s3.Config{Bucket: srv.Bucket, Prefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	tree, err := store.UserHome(acct, user)
	if err != nil {
		b.Fatal(err)
	}
	data := randBytes(16 << 10)
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	n := 0
	for b.Loop() {
		u, err := tree.Create(fmt.Sprintf("f%d", n%50), 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := u.WriteAt(data, 0); err != nil {
			b.Fatal(err)
		}
		if err := u.Commit(); err != nil {
			b.Fatal(err)
		}
		u.Close()
		n++
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/op")
}
