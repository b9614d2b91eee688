package sftp

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// hangUpListener's connections behave as closed by the client (their
// deadlines can no longer be set) once hungUp is true.
type hangUpListener struct {
	net.Listener
	hungUp *atomic.Bool
}

func (l *hangUpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &hangUpConn{TCPConn: c.(*net.TCPConn), hungUp: l.hungUp}, nil
}

type hangUpConn struct {
	*net.TCPConn
	hungUp *atomic.Bool
}

func (c *hangUpConn) SetDeadline(t time.Time) error {
	if c.hungUp.Load() {
		return net.ErrClosed
	}
	return c.TCPConn.SetDeadline(t)
}

// A client that hangs up as soon as it has logged in has logged in all the
// same: its key's use (and so the user's last login) and the login are
// recorded. They were not when the socket was already closed by the time
// the server started the session's idle timer, which CI's race-detector
// run caught (TestLastLoginUnderTheDocumentedRoles in cmd/skiff).
func TestLoginOfAClientThatHangsUpAtOnceIsRecorded(t *testing.T) {
	signer := ed25519Signer(t)
	var hungUp atomic.Bool
	accept := keys(map[*sftplogin.Login]ssh.PublicKey{&alice: signer.PublicKey()})
	dir := &fakeDirectory{publicKey: func(login string, key ssh.PublicKey) (*sftplogin.Login, error) {
		l, err := accept(login, key)
		if err == nil {
			hungUp.Store(true) // the client is in, and gone
		}
		return l, err
	}}
	ts := newTestServer(t, dir, nil)
	raw, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.Serve(context.Background(), &hangUpListener{Listener: raw, hungUp: &hungUp})

	cfg, _ := clientConfig("alice", ssh.PublicKeys(signer))
	if c, err := ssh.Dial("tcp", raw.Addr().String(), cfg); err == nil {
		c.Close()
	}
	testkit.Eventually(t, "the connection to end as client closed", func() bool {
		return strings.Contains(ts.logs.String(), `reason="client closed"`)
	})
	dir.mu.Lock()
	used := append([]string(nil), dir.used...)
	dir.mu.Unlock()
	if len(used) != 1 || used[0] != testAccount+"/key-alice" {
		t.Errorf("key use recorded for %v, want alice's key once", used)
	}
	if !strings.Contains(ts.logs.String(), `msg="sftp login"`) {
		t.Error(`the server did not log "sftp login" for the client that hung up`)
	}
}
