package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/migrations"
	"github.com/skiffhq/skiff/tenant"
)

// dbLink stands between a node and PostgreSQL, so that a test can take the
// database away from that node: "down" resets every connection and refuses
// new ones, as a stopped server does; "hung" accepts connections and
// delivers nothing either way, as a frozen server or a black-holed network
// does. Other nodes (the fixture's own pool) still reach the database, so a
// change can be made while this node cannot see it.
type dbLink struct {
	t      *testing.T
	target string
	ln     net.Listener

	mu    sync.Mutex
	state string // "up", "down" or "hung"
	conns map[net.Conn]struct{}
}

func newDBLink(t *testing.T, dsn string) (*dbLink, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &dbLink{t: t, target: u.Host, ln: ln, state: "up", conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		ln.Close()
		l.set("down")
	})
	go l.accept()
	u.Host = ln.Addr().String()
	return l, u.String()
}

func (l *dbLink) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		state := l.state
		if state != "down" {
			l.conns[c] = struct{}{}
		}
		l.mu.Unlock()
		switch state {
		case "down":
			c.Close()
		case "hung":
			// Held open, never answered, until the link changes state.
		default:
			go l.forward(c)
		}
	}
}

func (l *dbLink) forward(c net.Conn) {
	s, err := net.Dial("tcp", l.target)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	if l.state != "up" {
		l.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	l.conns[s] = struct{}{}
	l.mu.Unlock()
	go func() { io.Copy(s, l.gate(c)); s.Close() }()
	io.Copy(c, l.gate(s))
	c.Close()
}

// gate reads from c, and holds what it read while the link is hung.
func (l *dbLink) gate(c net.Conn) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		n, err := c.Read(p)
		for {
			l.mu.Lock()
			state := l.state
			l.mu.Unlock()
			if state != "hung" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// set changes the link's state. Leaving "hung" or going "down" resets every
// connection: the node's next calls reconnect.
func (l *dbLink) set(state string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if state != "hung" {
		for c := range l.conns {
			c.Close()
			delete(l.conns, c)
		}
	}
	l.state = state
}

// A database outage does not end SFTP sessions: for 5 s the node cannot
// reach PostgreSQL (reset and refused like a stopped server, or hung with
// nothing answered), an upload in progress goes on and completes, and
// sessions keep their last known rights. A user whose access is withdrawn
// meanwhile (on a node that reaches the database) is ended once this node
// reaches it again. Before, the first failed check ended every session.
func TestSessionsSurviveADatabaseOutage(t *testing.T) {
	for _, outage := range []string{"down", "hung"} {
		t.Run(outage, func(t *testing.T) {
			f := newDedicatedFixture(t)
			link, linkURL := newDBLink(t, f.url)
			db, err := tenant.Open(context.Background(), linkURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			n := f.nodeOn(db, linkURL, func(b *TenantBackend) { b.DBTimeout = time.Second })

			uploader := f.session(n, "Acme's user, uploading", sharedTestIP, f.uma)
			withdrawn := f.session(n, "Beta's user, whose SFTP is turned off during the outage", sharedTestIP, f.ben)
			idle := f.session(n, "Beta's user, idle", sharedTestIP, f.ben)

			data, uploaded := uploader.slowUpload(t, "/My Files/during-the-outage.bin")

			time.Sleep(time.Second)
			link.set(outage)
			outageStart := time.Now()
			time.Sleep(1500 * time.Millisecond) // the gates' cached answers have expired
			withdrawn.works(t)
			ownerCtx := f.ownerContext(f.beta)
			_, benID := f.userContext(f.ben)
			if _, err := f.svc.SFTP.SetSFTPAccess(ownerCtx, benID, false); err != nil {
				t.Fatal(err)
			}
			// The node cannot know yet: last known rights apply.
			withdrawn.works(t)
			time.Sleep(time.Until(outageStart.Add(5 * time.Second)))
			withdrawn.works(t)
			link.set("up")

			// Once the node reaches the database again, the next check
			// sees the change; the idle session ends too, when the node's
			// notification connection is back and checks every session.
			withdrawn.refusedThenEnds(t, 5*time.Second)
			idle.ends(t, 15*time.Second)

			uploader.uploaded(t, "/My Files/during-the-outage.bin", data, uploaded)
		})
	}
}

// slowUpload uploads 3 MiB of random data to name over about 8 s, in the
// background; the channel tells how it ended.
func (s *liveSession) slowUpload(t *testing.T, name string) ([]byte, <-chan error) {
	t.Helper()
	data := make([]byte, 3<<20)
	rand.Read(data)
	w, err := s.sftp.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		const chunk = 32 << 10
		for off := 0; off < len(data); off += chunk {
			if _, err := w.Write(data[off:min(off+chunk, len(data))]); err != nil {
				done <- err
				return
			}
			time.Sleep(80 * time.Millisecond)
		}
		done <- w.Close()
	}()
	return data, done
}

// uploaded checks that the upload to name ended well and the file holds data.
func (s *liveSession) uploaded(t *testing.T, name string, data []byte, done <-chan error) {
	t.Helper()
	if err := <-done; err != nil {
		t.Fatalf("%s: the upload failed: %v", s.name, err)
	}
	r, err := s.sftp.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("%s: the file uploaded has %d bytes, not the %d sent", s.name, len(got), len(data))
	}
	s.works(t)
}

// The embedded PostgreSQL itself stopped for 5 s during a transfer and
// started again: the transfer completes, sessions go on, and a revocation
// made once it is back ends its session at once.
func TestSessionsSurviveAPostgreSQLRestart(t *testing.T) {
	server, opts := pgtest.PrivateServer(t)
	opts.Port = server.Port() // the same address after the restart
	dsn := server.URL("postgres")
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	err = migrations.Up(context.Background(), db, slog.New(slog.DiscardHandler))
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	f := newDedicatedFixtureOn(t, dsn)
	n := f.nodeOn(f.db, dsn, func(b *TenantBackend) { b.DBTimeout = time.Second })
	uploader := f.session(n, "Acme's user, uploading", sharedTestIP, f.uma)
	other := f.session(n, "Beta's user", sharedTestIP, f.ben)
	data, uploaded := uploader.slowUpload(t, "/My Files/during-the-restart.bin")

	time.Sleep(time.Second)
	if err := server.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the gates' cached answers have expired
	other.works(t)
	time.Sleep(3500 * time.Millisecond)
	other.works(t)
	pgtest.StartServer(t, opts)

	uploader.uploaded(t, "/My Files/during-the-restart.bin", data, uploaded)
	other.works(t)
	// Back: a revocation applies at once (the node hears of it, or the
	// next check sees it).
	ownerCtx := f.ownerContext(f.beta)
	_, benID := f.userContext(f.ben)
	if _, err := f.svc.SFTP.SetSFTPAccess(ownerCtx, benID, false); err != nil {
		t.Fatal(err)
	}
	other.refusedThenEnds(t, 3*time.Second)
}

// refusedThenEnds checks that a session in use is refused within limit and
// its connection then closes.
func (s *liveSession) refusedThenEnds(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if _, err := s.sftp.ReadDir("/My Files"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still works %v later", s.name, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.ends(t, 2*time.Second)
}
