package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skiffhq/skiff/tenant/outbox"
)

// TestMailServerOutageLosesNothingAndKeepsOrder: the mail server goes away
// (nothing listens), comes back refusing sessions, then takes mail again —
// "a minute" shortened to under a second by the worker's intervals. Emails
// written before and during the outage all arrive, once each, in the order
// they were written, and the outage used up none of their attempts.
func TestMailServerOutageLosesNothingAndKeepsOrder(t *testing.T) {
	const (
		down      = iota // connection refused
		refusing         // up, but refusing sessions (451 at EHLO)
		available        // taking mail
	)
	var phase atomic.Int32
	env := newWorkerEnv(t, smtpOptions{session: func() error {
		if phase.Load() == refusing {
			return errors.New("not taking mail now")
		}
		return nil
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dead := newTestSMTPSender(t, &testSMTP{Host: "127.0.0.1", Port: deadPort}, "", "starttls=off", nil)
	live := env.sender

	w := env.worker()
	w.Now = time.Now
	w.Sender = senderFunc(func(ctx context.Context, msg *Message) error {
		if phase.Load() == down {
			return dead.Send(ctx, msg)
		}
		return live.Send(ctx, msg)
	})
	w.PollInterval, w.BaseDelay, w.MaxDelay = 20*time.Millisecond, 10*time.Millisecond, 40*time.Millisecond
	w.Metrics = NewMetrics(prometheus.NewRegistry())

	var want []string
	write := func(n int) {
		for range n {
			to := fmt.Sprintf("user%d@example.com", len(want)+1)
			env.enqueue(t, to, samples[outbox.EmailModuleActivated].data)
			want = append(want, to)
		}
	}
	write(3) // before the outage's first attempt
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	write(2) // during it
	phase.Store(refusing)
	time.Sleep(300 * time.Millisecond)
	write(1)
	if got := len(env.smtp.Mails()); got != 0 {
		t.Fatalf("%d emails arrived while the server refused sessions", got)
	}
	phase.Store(available)

	deadline := time.Now().Add(15 * time.Second)
	for len(env.smtp.Mails()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mails := env.smtp.Mails()
	var got []string
	for _, m := range mails {
		got = append(got, m.To...)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the outage the server received %v, want %v (all, once, in order)", got, want)
	}
	for _, n := range env.notifications(t) {
		if n.Status != outbox.EmailSent || n.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts, want SENT after 1 (an outage is no attempt of the email)", n.Recipient, n.Status, n.Attempts)
		}
	}
	if d := testutil.ToFloat64(w.Metrics.sends["deferred"]); d < 2 {
		t.Errorf("skiff_email_sends_total{result=deferred} = %v, want the outage's attempts", d)
	}
	if s := testutil.ToFloat64(w.Metrics.sends["sent"]); s != float64(len(want)) {
		t.Errorf("skiff_email_sends_total{result=sent} = %v, want %d", s, len(want))
	}
}
