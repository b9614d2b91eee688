package vfs_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/sftp/vfs"
)

func withPoolIdle(d time.Duration) option { return func(c *vfs.Config) { c.QuotaPoolIdle = d } }

func (q *memQuota) reserveCalls() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.asks
}

// A session reserves room once, for a chunk, and its later files draw on
// it with no call to the Quota; the files' growth is settled, and the room
// they did not use stays with the session until it ends.
func TestQuotaPoolLaterFilesDoNotAsk(t *testing.T) {
	q := newMemQuota(-1)
	e := newEnv(t, withQuota(q), withPoolIdle(time.Hour))
	const size = 1 << 20
	for i := range 5 {
		if err := e.put(fmt.Sprintf("f%d.bin", i), strings.Repeat("p", size)); err != nil {
			t.Fatal(err)
		}
	}
	if n := q.reserveCalls(); n != 1 {
		t.Errorf("5 uploads in one session called Reserve %d times, want 1", n)
	}
	q.wantState(t, "after 5 uploads", 5*size, 64<<20-5*size)
	e.close()
	q.wantState(t, "after the session", 5*size, 0)
}

// A session that ends returns its pool at once, whether the client closed
// it or the connection dropped in the middle of an upload.
func TestQuotaPoolReturnedWhenTheSessionEnds(t *testing.T) {
	q := newMemQuota(-1)
	e := newEnv(t, withQuota(q), withPoolIdle(time.Hour))
	if err := e.put("done.bin", strings.Repeat("d", 3000)); err != nil {
		t.Fatal(err)
	}
	e.killUpload("killed.bin", 5<<20)
	q.wantState(t, "after the connection dropped", 3000, 64<<20-3000)
	if err := e.session.Close(); err != nil {
		t.Fatal(err)
	}
	if used, reserved := q.state(); used != 3000 || reserved != 0 {
		t.Errorf("after the session ended: used %d, reserved %d; want 3000, 0", used, reserved)
	}
}

// Room no write draws on goes back to the Quota after QuotaPoolIdle.
func TestQuotaPoolReturnedWhenIdle(t *testing.T) {
	q := newMemQuota(-1)
	e := newEnv(t, withQuota(q), withPoolIdle(20*time.Millisecond))
	if err := e.put("a.bin", strings.Repeat("a", 1000)); err != nil {
		t.Fatal(err)
	}
	q.wantState(t, "an idle session", 1000, 0)
	if err := e.put("b.bin", strings.Repeat("b", 1000)); err != nil {
		t.Fatal(err)
	}
	q.wantState(t, "idle again", 2000, 0)
	if n := q.reserveCalls(); n != 2 {
		t.Errorf("Reserve called %d times, want 2 (once per burst)", n)
	}
}

// Near the quota (no room for a chunk) each write reserves exactly what it
// needs and a close returns everything: the session keeps no room that
// another session could need.
func TestQuotaPoolNearTheQuotaReservesExactly(t *testing.T) {
	const limit = 3 << 20
	q := newMemQuota(limit)
	e := newEnv(t, withQuota(q), withPoolIdle(time.Hour))
	const size = 1 << 20
	if err := e.put("a.bin", strings.Repeat("a", size)); err != nil {
		t.Fatal(err)
	}
	q.wantState(t, "after an upload near the quota", size, 0)
	if n := q.reserveCalls(); n != size/(32<<10) {
		t.Errorf("Reserve called %d times for %d writes of 32 KiB", n, size/(32<<10))
	}
	if err := e.put("b.bin", strings.Repeat("b", 3*size)); err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("upload past the quota: %v", err)
	}
	q.wantState(t, "after a refused upload", size, 0)
	if err := e.put("c.bin", strings.Repeat("c", 2*size)); err != nil {
		t.Fatalf("upload of the room left: %v", err)
	}
	q.wantState(t, "at the quota", limit, 0)
}

// Channels of one session upload at once, drawing on the same pool: each
// file is counted once, nothing is left reserved when the session ends, and
// with a quota that holds exactly what they upload, none is refused.
func TestQuotaPoolSharedByChannels(t *testing.T) {
	const channels, files, size = 3, 4, 3 << 20
	for _, limit := range []int64{-1, channels * files * size} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			q := newMemQuota(limit)
			e := newEnv(t, withQuota(q), withPoolIdle(time.Hour))
			var wg sync.WaitGroup
			errs := make(chan error, channels*files)
			for c := range channels {
				server, client := net.Pipe()
				go e.session.Serve(server)
				cl, err := sftp.NewClientPipe(client, client, sftp.MaxPacketUnchecked(255*1024))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				wg.Go(func() {
					for i := range files {
						f, err := cl.Create(fmt.Sprintf("c%d-%d.bin", c, i))
						if err == nil {
							_, err = f.Write([]byte(strings.Repeat("x", size)))
							if cerr := f.Close(); err == nil {
								err = cerr
							}
						}
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			e.close()
			if used, reserved := q.state(); used != channels*files*size || reserved != 0 {
				t.Errorf("used %d, reserved %d; want %d, 0", used, reserved, channels*files*size)
			}
		})
	}
}

// Past half its chunk, a pool reserves the next in the background; when
// the quota has no room for it, the pool turns tight: the rest of the
// upload draws exactly on what is left, and the close returns the rest.
func TestQuotaPoolReservesAhead(t *testing.T) {
	const size = 48 << 20 // past half of the first 64 MiB
	data := strings.Repeat("r", size)
	for _, tc := range []struct {
		limit int64
		what  string
	}{{-1, "no quota"}, {100 << 20, "no room for a second chunk"}} {
		q := newMemQuota(tc.limit)
		e := newEnv(t, withQuota(q), withPoolIdle(time.Hour))
		e.client.Close()
		e.conn.Close()
		<-e.served
		e.connect(sftp.MaxPacketUnchecked(255 * 1024))
		if err := e.put("big.bin", data); err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for q.reserveCalls() < 2 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := q.reserveCalls(); n != 2 {
			t.Errorf("%s: Reserve called %d times, want 2 (the first chunk, the next one ahead)", tc.what, n)
		}
		if tc.limit < 0 {
			// The close settles the file's growth in the background.
			deadline := time.Now().Add(5 * time.Second)
			for u, r := q.state(); (u != size || r < 2*64<<20-size) && time.Now().Before(deadline); u, r = q.state() {
				time.Sleep(time.Millisecond)
			}
			if used, reserved := q.state(); used != size || reserved < 2*64<<20-size {
				t.Errorf("%s: used %d, reserved %d; want %d and two chunks less what it used", tc.what, used, reserved, size)
			}
		} else {
			q.wantState(t, tc.what, size, 0)
		}
		e.close()
		q.wantState(t, tc.what+", after the session", size, 0)
	}
}
