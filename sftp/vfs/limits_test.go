package vfs_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// withIdentity makes the session one of the user's, counted by handles and
// replies (either may be nil).
func withIdentity(account, user string, handles *vfs.Counter, replies *vfs.ReplyBudget) option {
	return func(c *vfs.Config) {
		c.AccountID, c.UserID = account, user
		c.Handles = handles.For(account, user)
		c.Replies = replies.For()
	}
}

// openFiles opens up to n new files on e and returns those it opened and
// the error that stopped it.
func openFiles(e *env, prefix string, n int) ([]io.Closer, error) {
	var open []io.Closer
	for i := range n {
		f, err := e.client.Create(fmt.Sprintf("/My Files/%s-%d", prefix, i))
		if err != nil {
			return open, err
		}
		open = append(open, f)
	}
	return open, nil
}

// wantRefusal checks that err is the SFTP failure with the cap's message.
func wantRefusal(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), msg) || statusCode(err) != "failure" {
		t.Fatalf("got %v (%s), want the failure %q", err, statusCode(err), msg)
	}
}

// Open handles are capped per connection, per user, per account and on the
// server. A client at a cap gets a failure naming it for its own open,
// however often it tries; another tenant's user transfers meanwhile; a
// handle closed, or left open by a channel that ends, is given back.
func TestHandleCaps(t *testing.T) {
	handles := vfs.NewCounter("open files", vfs.Caps{PerConnection: 3, PerUser: 4, PerAccount: 6, PerProcess: 9})
	t.Cleanup(func() { // runs after every session closed
		if n := handles.Total(); n != 0 {
			t.Errorf("%d handles still counted after every session ended", n)
		}
	})
	const (
		user2, user3, user4 = "00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004"
		thirdAccount        = "99999999-0000-4000-8000-000000000003"
	)
	a1 := newEnv(t, withIdentity(accountID, userID, handles, nil))
	a2 := newEnv(t, withIdentity(accountID, userID, handles, nil))
	b := newEnv(t, withIdentity(accountID, user2, handles, nil))
	c := newEnv(t, withIdentity(otherAccount, user3, handles, nil))
	d := newEnv(t, withIdentity(thirdAccount, user4, handles, nil))

	a1Files, err := openFiles(a1, "a1", 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 { // the flood, bounded
		_, err := openFiles(a1, fmt.Sprintf("more%d", i), 1)
		wantRefusal(t, err, "too many open files on this connection (limit 3)")
	}
	if _, err := a1.client.ReadDir("/My Files"); err == nil || !strings.Contains(err.Error(), "too many open files") {
		t.Fatalf("listing at the cap: %v, want the refusal (a listing is a handle too)", err)
	}
	_, err = openFiles(a2, "a2", 2)
	wantRefusal(t, err, "too many open files for this user (limit 4)")
	_, err = openFiles(b, "b", 3)
	wantRefusal(t, err, "too many open files for this account (limit 6)")

	// Another tenant's user transfers normally.
	if err := c.put("/My Files/t.txt", "hello"); err != nil {
		t.Fatalf("other tenant's upload: %v", err)
	}
	if got, err := c.get("/My Files/t.txt"); err != nil || got != "hello" {
		t.Fatalf("other tenant's download: %q, %v", got, err)
	}
	if _, err := openFiles(c, "c", 3); err != nil {
		t.Fatal(err)
	}
	_, err = openFiles(d, "d", 1)
	wantRefusal(t, err, "too many open files on this server (limit 9)")

	// Closing gives handles back.
	a1Files[0].Close()
	if _, err := openFiles(d, "d", 1); err != nil {
		t.Fatalf("after a close: %v", err)
	}
	if n := handles.Total(); n != 9 {
		t.Errorf("%d handles counted, want 9", n)
	}
}

// replyCap is the memory one queued reply may hold: the largest buffer.
const replyCap = 256<<10 + 4

// flood opens file on s and pipelines n READs of 255 KiB without reading a
// reply; it returns how many requests the server has taken so far.
func flood(t *testing.T, s *vfs.Session, file string, n int) *atomic.Int64 {
	t.Helper()
	r := newRawInit(t, s)
	h := r.open(1, file, 1)
	var sent atomic.Int64
	go func() {
		for i := range n {
			p := packet(typeRead, u32(uint32(10+i)), str(string(h)), u64(uint64(i)*255<<10), u32(255<<10))
			if _, err := r.conn.Write(p); err != nil {
				return // the channel ended
			}
			sent.Add(1)
		}
	}()
	return &sent
}

// settled waits, at most 10 s, until v has not changed for 300 ms.
func settled(v func() int64) int64 {
	last, since := v(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cur := v(); cur != last {
			last, since = cur, time.Now()
		} else if time.Since(since) > 300*time.Millisecond {
			break
		}
	}
	return last
}

// Clients that pipeline reads and never read the replies are stopped
// (their requests stay unread) once their share of the reply budget, or
// the budget, is spent: the queued bytes stay within the budget plus one
// reply per channel, and another tenant's user still downloads.
func TestReplyBudgetBackPressure(t *testing.T) {
	const perConn, total = 1 << 20, 3 << 20
	replies := vfs.NewReplyBudget(total, perConn)
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)

	const hostiles = 4
	var sent []*atomic.Int64
	for i := range hostiles {
		h := newEnv(t, withIdentity(accountID, userID, nil, replies))
		mustWrite(t, filepath.Join(h.home(), "big"), string(big))
		sent = append(sent, flood(t, h.session, "/My Files/big", 64))
		if i == 0 {
			// Alone, one connection stops at its share.
			taken := settled(sent[0].Load)
			if used := replies.Used(); used > perConn+replyCap {
				t.Errorf("one flooding connection queued %d bytes, over its share %d + one reply", used, perConn)
			}
			if taken > 8 {
				t.Errorf("the server took %d of the 64 pipelined reads: it went on reading past its share", taken)
			}
		}
	}
	for _, s := range sent {
		settled(s.Load)
	}
	used := settled(replies.Used)
	if used > total+hostiles*replyCap {
		t.Errorf("%d flooding connections queued %d bytes, over the budget %d + one reply each", hostiles, used, total)
	}
	t.Logf("queued by %d flooding connections: %d bytes (budget %d)", hostiles, used, total)

	// Another tenant downloads the whole file meanwhile.
	o := newEnv(t, withIdentity(otherAccount, userID, nil, replies))
	mustWrite(t, filepath.Join(o.base, otherAccount, "users", userID, "big"), string(big))
	start := time.Now()
	got, err := o.get("/My Files/big")
	if err != nil || got != string(big) {
		t.Fatalf("other tenant's download: %d bytes, %v", len(got), err)
	}
	t.Logf("other tenant downloaded 8 MiB in %v", time.Since(start))
	if u := replies.Used(); u > total+(hostiles+1)*replyCap {
		t.Errorf("%d bytes queued after the download", u)
	}
}

// limits@openssh.com announces the most handles a channel may open: the
// smallest of the caps on open files that apply, or the channel's own
// 1,024 when that is smaller or nothing else caps them.
func TestLimitsAnnounceTheHandleCap(t *testing.T) {
	for _, tc := range []struct {
		caps vfs.Caps
		want uint64
	}{
		{vfs.Caps{}, 1024},
		{vfs.Caps{PerConnection: 300, PerUser: 400, PerAccount: 500, PerProcess: 600}, 300},
		{vfs.Caps{PerConnection: 300, PerUser: 100, PerAccount: 500, PerProcess: 600}, 100},
		{vfs.Caps{PerAccount: 50}, 50},
		{vfs.Caps{PerProcess: 7}, 7},
		{vfs.Caps{PerConnection: 5000, PerUser: 20000}, 1024},
	} {
		e := newEnv(t, withIdentity(accountID, userID, vfs.NewCounter("open files", tc.caps), nil))
		r := newRawInit(t, e.session)
		typ, b := r.ext(1, "limits@openssh.com")
		if typ != typeExtendedReply || len(b) != 32 {
			t.Fatalf("%+v: limits reply %d %x", tc.caps, typ, b)
		}
		if got := binary.BigEndian.Uint64(b[24:]); got != tc.want {
			t.Errorf("%+v: limits announce %d open handles, want %d", tc.caps, got, tc.want)
		}
	}
}
