package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Eventually polls cond until it holds, failing the test if it does not
// within a generous deadline: it asserts that something happens, never how
// fast, so a busy machine does not make it flaky.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Within runs op and returns its error, failing the test if op is still
// running after limit: for an operation that must end (with success or an
// error) rather than hang. An op left running is abandoned; what it waits
// for is the test's cleanup to release.
func Within(t testing.TB, limit time.Duration, what string, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s still waits after %v", what, limit)
		return nil
	}
}

// SyncBuffer is a bytes.Buffer that a server's goroutines may write to while
// a test reads it, e.g. as a slog handler's output.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
