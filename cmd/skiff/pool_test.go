package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
)

// How many connections a node holds, idle and under a burst of logins, for
// sizing max_connections (docs/OPERATIONS.md, "Database connections"); and
// every one of them says who it is in application_name.
func TestDatabaseConnections(t *testing.T) {
	pg := startOperatorPG(t)
	_, serviceURL := pg.acmeInstance(t)
	const password = acmePassword
	const poolSize = 32
	s := serveBinary(t, nil, "--database-url="+serviceURL, "--data-dir="+newDataDir(t), "--http-max-requests-per-address=1000", "--http-max-connections-per-address=1000", "--database-connection-max-idle-time=2s")
	login := ownerSFTPLogin(t, s, "boss@acme.example", password)

	count := func() (total int, names map[string]int) {
		rows, err := pg.admin.Query(`SELECT application_name, count(*) FROM pg_stat_activity WHERE usename = 'skiff_service' GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		names = map[string]int{}
		for rows.Next() {
			var name string
			var n int
			if err := rows.Scan(&name, &n); err != nil {
				t.Fatal(err)
			}
			names[name] += n
			total += n
		}
		return total, names
	}
	time.Sleep(2 * time.Second)
	idle, names := count()
	if len(names) != 1 || names["skiff"] != idle {
		t.Errorf("connections by application_name: %v, want all \"skiff\"", names)
	}

	// A burst: 200 GraphQL queries and 10 SFTP password logins at once
	// (one user: more logins of the same user at once meet the login
	// throttle, not the database).
	gs := &server{http: s.http}
	tok := gs.login(t, "boss@acme.example", password)
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			n, _ := count()
			if int64(n) > peak.Load() {
				peak.Store(int64(n))
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	var sftpOK atomic.Int64
	for range 200 {
		wg.Go(func() { gs.gql(t, tok, `{ account { id name users { edges { node { id email } } } } }`, nil) })
	}
	for range 10 {
		wg.Go(func() {
			c, err := ssh.Dial("tcp", s.sftp, &ssh.ClientConfig{User: login, Auth: []ssh.AuthMethod{ssh.Password(password)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: time.Minute})
			if err == nil {
				sftpOK.Add(1)
				c.Close()
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	if peak.Load() > poolSize+1 {
		t.Errorf("%d connections, more than the pool (%d) and the notification connection", peak.Load(), poolSize)
	}
	// The pool shrinks back once its connections have been idle for
	// --database-connection-max-idle-time (2 s) and database/sql's cleaner
	// has passed; without the setting it would keep them all.
	burstEnded, after := time.Now(), 0
	testkit.Eventually(t, "the pool to shrink after the burst", func() bool {
		after, _ = count()
		return after <= idle+2
	})
	t.Logf("connections of one node as skiff_service: %d idle after start, %d at most during 200 GraphQL queries + 10 SFTP logins (%d SFTP logins in), %d %v after the burst",
		idle, peak.Load(), sftpOK.Load(), after, time.Since(burstEnded).Round(100*time.Millisecond))
}

// A node keeps one LISTEN connection, on which every copy of database state
// it holds hears its channel (docs/OPERATIONS.md, "Database connections");
// when that connection is lost, every one of them falls back and resyncs
// once it is back (internal/pglisten's tests show the resync).
func TestOneNotificationConnection(t *testing.T) {
	pg := startOperatorPG(t)
	_, serviceURL := pg.acmeInstance(t)
	s := serveBinary(t, nil, "--database-url="+serviceURL, "--data-dir="+newDataDir(t))
	owners := []string{"policy", "dedicated IPs", "SFTP access changes", "sftp sessions", "sftp activity"}
	logged := func(msg string) bool {
		for _, o := range owners {
			if !strings.Contains(s.stderr.String(), o+": "+msg) {
				return false
			}
		}
		return true
	}
	listeners := func() int {
		var n int
		if err := pg.admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE usename = 'skiff_service' AND query LIKE 'LISTEN %'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testkit.Eventually(t, "every copy to listen", func() bool { return logged("listening for changes") })
	if n := listeners(); n != 1 {
		t.Fatalf("the node holds %d LISTEN connections, want 1", n)
	}

	if _, err := pg.admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'skiff_service' AND query LIKE 'LISTEN %'`); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "every copy to fall back", func() bool { return logged("notification connection lost") })
	testkit.Eventually(t, "the connection to come back", func() bool {
		return strings.Contains(s.stderr.String(), "notification connection back") && listeners() == 1
	})
	if n := listeners(); n != 1 {
		t.Fatalf("the node holds %d LISTEN connections after a reconnection, want 1", n)
	}
}
