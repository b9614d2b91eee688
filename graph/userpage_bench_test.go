package graph_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
)

// BenchmarkUserPage is an administrator's page of 100 users with their
// group, SFTP credentials and three keys each, through the real handler.
func BenchmarkUserPage(b *testing.B) {
	e := newEnv(b)
	accountID, owner := e.account("Acme", "owner@acme.example")
	staff := e.staff("support@skiff.example")
	e.mustDo(staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 200}) { userErrors { message } } }`,
		vars{"a": globalID("Account", accountID)}, nil)
	p, err := e.svc.People.Authenticate(context.Background(), owner, netip.Addr{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := tenant.WithPrincipal(context.Background(), p)
	for i := range 100 {
		u, err := e.svc.People.CreateUser(ctx, people.CreateUserInput{Email: fmt.Sprintf("u%d@acme.example", i), Name: "User", SFTPEnabled: true})
		if err != nil {
			b.Fatal(err)
		}
		for range 3 {
			pub, _, _ := ed25519.GenerateKey(rand.Reader)
			sk, _ := ssh.NewPublicKey(pub)
			if _, err := e.svc.SFTP.AddSSHKey(ctx, u.ID, "laptop", string(ssh.MarshalAuthorizedKey(sk))); err != nil {
				b.Fatal(err)
			}
		}
	}
	const page = `query { account { users(first: 100) { edges { node {
		id name email role group { id name } sftp { enabled credentials { login customLogin } }
		sshKeys { id title algorithm bits fingerprint createdAt lastUsedAt } } } pageInfo { endCursor hasNextPage } } } }`
	e.mustDo(owner, page, nil, nil)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		e.mustDo(owner, page, nil, nil)
	}
	// On a shared machine wall time varies with the neighbours; the CPU this
	// process spends per request (server, client and GC) varies less.
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
