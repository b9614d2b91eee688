package sftp

import (
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Several connections of one user at once, through the whole stack and the
// storage use kept in PostgreSQL: uploads of one name from every
// connection, two appends to one file, and a connection reset (TCP RST) in
// the middle of an upload and of an append, then a resume from a new
// connection. Every finished upload is whole, and the account's recorded
// storage use is what the home really stores once the connections end.
func TestE2EConcurrentWritesKeepTheStorageUseRight(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n := e.startNode(t, func(c *Config) { c.Sessions.(*TenantBackend).Quotas = e.svc.Storage }, nil)
	staff := e.setAccountQuota(t, 1<<30)
	connect := func() (*pkgsftp.Client, *net.TCPConn) {
		nc, err := net.DialTimeout("tcp", n.addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &ssh.ClientConfig{User: e.login, Auth: []ssh.AuthMethod{ssh.Password(e.password)},
			HostKeyCallback: e.hostKeyChecker(t), Timeout: 10 * time.Second}
		conn, chans, reqs, err := ssh.NewClientConn(nc, n.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := ssh.NewClient(conn, chans, reqs)
		t.Cleanup(func() { c.Close() })
		return mustSFTP(t, c), nc.(*net.TCPConn)
	}
	var clients []*pkgsftp.Client
	for range 4 {
		c, _ := connect()
		clients = append(clients, c)
	}
	write := func(c *pkgsftp.Client, name string, flag int, b byte, size int) error {
		f, err := c.OpenFile(name, flag)
		if err != nil {
			return err
		}
		if _, err := f.Write([]byte(strings.Repeat(string(b), size))); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	const create, appendTo = os.O_WRONLY | os.O_CREATE | os.O_TRUNC, os.O_WRONLY | os.O_APPEND
	if err := write(clients[0], "log.txt", create, 'o', 1000); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				if err := write(c, "same.bin", create, byte('a'+i), (i+1)*100<<10); err != nil {
					t.Errorf("round %d: upload %d: %v", round, i, err)
				}
			})
		}
		wg.Wait()
		got, err := clients[0].Stat("same.bin")
		if err != nil {
			t.Fatal(err)
		}
		f, err := clients[0].Open("same.bin")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, got.Size())
		_, err = f.ReadAt(buf, 0)
		f.Close()
		if err != nil && err.Error() != "EOF" {
			t.Fatal(err)
		}
		if i := int(buf[0] - 'a'); len(buf) != (i+1)*100<<10 || strings.Count(string(buf), string(buf[:1])) != len(buf) {
			t.Fatalf("round %d: same.bin (%d bytes) is not one whole upload", round, len(buf))
		}
	}
	var wg sync.WaitGroup
	for i, c := range clients[:2] {
		wg.Go(func() {
			// On S3 one of two appends at once fails at its close: the file
			// changed since it was opened.
			write(c, "log.txt", appendTo, byte('1'+i), 50<<10)
		})
	}
	wg.Wait()

	// A connection reset in the middle of a new upload and of an append.
	cut, tcp := connect()
	up, err := cut.OpenFile("cut.bin", create)
	if err != nil {
		t.Fatal(err)
	}
	app, err := cut.OpenFile("log.txt", appendTo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(make([]byte, 300<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Write(make([]byte, 200<<10)); err != nil {
		t.Fatal(err)
	}
	tcp.SetLinger(0)
	tcp.Close()
	// Its handles are closed by the server soon; then a resume.
	time.Sleep(200 * time.Millisecond)
	if err := write(clients[2], "log.txt", appendTo, 'r', 10<<10); err != nil {
		t.Fatal(err)
	}

	for _, c := range clients {
		c.Close()
	}
	// The reset connection's handles are closed when the server notices
	// the reset; what its append kept (on S3) may land after a listing:
	// list again until both agree.
	last, _ := connect()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := last.ReadDir("/My Files")
		if err != nil {
			t.Fatal(err)
		}
		var stored int64
		for _, fi := range entries {
			stored += fi.Size()
		}
		st, err := e.svc.Storage.AccountStorage(staff, e.user.AccountID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Used == stored {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the account's recorded storage use is %d bytes; its files hold %d", st.Used, stored)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
