package notify

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant/outbox"

	"github.com/emersion/go-smtp"
	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
)

func TestMain(m *testing.M) {
	tenant.UseCheapPasswordHashes() // what the tests check does not depend on the cost
	pgtest.Main(m)
}

// fakeClock is the workers' clock; tests move it by hand.
type fakeClock = testkit.Clock

// workerEnv is a migrated database with one account, a test SMTP server and
// what a worker needs to send to it.
type workerEnv struct {
	db       *tenant.DB
	account  string
	smtp     *testSMTP
	sender   Sender
	renderer *Renderer
	clock    *fakeClock
}

func newWorkerEnv(t *testing.T, opts smtpOptions) *workerEnv {
	t.Helper()
	ctx := context.Background()
	db := pgtest.OpenStore(t)
	env := &workerEnv{db: db, smtp: startSMTP(t, opts), renderer: newTestRenderer(t)}
	env.sender = newTestSMTPSender(t, env.smtp, "", "starttls=off", nil)
	err := db.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &env.account, `INSERT INTO accounts (name) VALUES ('Analytical Engines') RETURNING id`)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Emails are due from the database's clock at enqueue time; the workers'
	// clock starts a little later so they are due at once.
	env.clock = testkit.NewClock(time.Now().Add(time.Second))
	return env
}

// worker returns a new Worker, as a restarted or another node would have.
func (env *workerEnv) worker() *Worker {
	w := NewWorker(env.db, env.renderer, env.sender)
	w.Now = env.clock.Now
	w.MessageIDDomain = "skiff.test"
	return w
}

func (env *workerEnv) enqueue(t *testing.T, to string, data outbox.EmailData) {
	t.Helper()
	ctx := context.Background()
	err := env.db.InAccount(ctx, env.account, func(tx *sqlx.Tx) error {
		return outbox.Enqueue(ctx, tx, env.account, outbox.Email{To: to, Data: data})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// notifications lists the account's emails, newest first.
func (env *workerEnv) notifications(t *testing.T) []*outbox.Notification {
	t.Helper()
	ctx := context.Background()
	var conn *tenant.Connection[*outbox.Notification]
	err := env.db.InAccount(ctx, env.account, func(tx *sqlx.Tx) (err error) {
		conn, err = outbox.ListNotifications(ctx, tx, env.account, tenant.Order{}, tenant.Page{First: tenant.MaxPageSize})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return conn.Items
}

// only returns the account's one email.
func (env *workerEnv) only(t *testing.T) *outbox.Notification {
	t.Helper()
	ns := env.notifications(t)
	if len(ns) != 1 {
		t.Fatalf("%d emails in the outbox, want 1", len(ns))
	}
	return ns[0]
}

func sendDue(t *testing.T, w *Worker, want int) {
	t.Helper()
	n, err := w.SendDue(context.Background())
	if err != nil {
		t.Fatalf("SendDue: %v", err)
	}
	if n != want {
		t.Fatalf("SendDue handled %d emails, want %d", n, want)
	}
}

func TestWorkerSendsCommittedEmailOnce(t *testing.T) {
	env := newWorkerEnv(t, smtpOptions{})
	ctx := context.Background()
	// A change that rolls back takes its email with it.
	errFailed := errors.New("the change failed")
	err := env.db.InAccount(ctx, env.account, func(tx *sqlx.Tx) error {
		if err := outbox.Enqueue(ctx, tx, env.account, outbox.Email{To: "mallory@example.com", Data: samples[outbox.EmailSFTPEnabled].data}); err != nil {
			return err
		}
		return errFailed
	})
	if !errors.Is(err, errFailed) {
		t.Fatal(err)
	}
	env.enqueue(t, "ada@example.com", samples[outbox.EmailSFTPEnabled].data)

	w := env.worker()
	sendDue(t, w, 1)
	sendDue(t, w, 0)

	mails := env.smtp.Mails()
	if len(mails) != 1 || len(mails[0].To) != 1 || mails[0].To[0] != "ada@example.com" {
		t.Fatalf("server received %+v, want one email to ada@example.com", mails)
	}
	m := parseMail(t, mails[0].Raw)
	n := env.only(t)
	if got := m.subject(t); got != "Your SFTP access to Analytical Engines" || n.Subject != got {
		t.Errorf("subject %q, recorded %q", got, n.Subject)
	}
	if to := m.Header.Get("To"); to != "<ada@example.com>" {
		t.Errorf("To = %q", to)
	}
	if id := m.Header.Get("Message-Id"); id != "<"+n.ID+"@skiff.test>" {
		t.Errorf("Message-ID = %q, want one derived from outbox email %s", id, n.ID)
	}
	for _, want := range []string{"Login ID:  ae-ada-7k2q", "sftp.example.com", "SHA256:7tZc3vJ4m5l0cQyq1oV3t0E+2l6cF3bWqgW4yZs4h2E"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text part lacks %q:\n%s", want, m.Text)
		}
	}
	if !strings.Contains(m.HTML, "<code>ae-ada-7k2q</code>") {
		t.Errorf("HTML part lacks the login:\n%s", m.HTML)
	}
	if n.Status != outbox.EmailSent || n.Attempts != 1 || n.SentAt == nil || !n.SentAt.Equal(env.clock.Now().Round(time.Microsecond)) {
		t.Errorf("recorded %+v", n)
	}
}

func TestWorkerRetriesTemporaryRefusalAfterBackoff(t *testing.T) {
	env := newWorkerEnv(t, smtpOptions{data: func(n int) error {
		if n == 1 {
			return smtpReply(451, smtp.EnhancedCode{4, 3, 0}, "try again later")
		}
		return nil
	}})
	env.enqueue(t, "ada@example.com", samples[outbox.EmailSSHKeyAdded].data)
	w := env.worker()
	sendDue(t, w, 1)
	n := env.only(t)
	if n.Status != outbox.EmailPending || n.Attempts != 1 || n.LastError != "the mail server refused the message (451 4.3.0)" {
		t.Fatalf("after the refusal: %+v", n)
	}
	if len(env.smtp.Mails()) != 0 {
		t.Fatal("the server kept a refused message")
	}
	// The first retry waits between 15 and 30 seconds.
	env.clock.Advance(14 * time.Second)
	sendDue(t, w, 0)
	env.clock.Advance(16 * time.Second)
	sendDue(t, w, 1)
	n = env.only(t)
	if n.Status != outbox.EmailSent || n.Attempts != 2 || n.LastError != "" {
		t.Errorf("after the retry: %+v", n)
	}
	if len(env.smtp.Mails()) != 1 {
		t.Errorf("server holds %d messages, want 1", len(env.smtp.Mails()))
	}
}

func TestWorkerGivesUp(t *testing.T) {
	t.Run("after MaxAttempts", func(t *testing.T) {
		env := newWorkerEnv(t, smtpOptions{data: func(int) error {
			return smtpReply(421, smtp.EnhancedCode{4, 4, 5}, "overloaded")
		}})
		env.enqueue(t, "ada@example.com", samples[outbox.EmailModuleActivated].data)
		w := env.worker()
		w.MaxAttempts = 3
		for range 3 {
			sendDue(t, w, 1)
			env.clock.Advance(time.Hour)
		}
		sendDue(t, w, 0)
		if n := env.only(t); n.Status != outbox.EmailFailed || n.Attempts != 3 || !strings.Contains(n.LastError, "421") {
			t.Errorf("%+v", n)
		}
	})
	t.Run("at once when the recipient is refused", func(t *testing.T) {
		env := newWorkerEnv(t, smtpOptions{rcpt: func(int, string) error {
			return smtpReply(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		}})
		env.enqueue(t, "nobody@example.com", samples[outbox.EmailModuleActivated].data)
		w := env.worker()
		sendDue(t, w, 1)
		env.clock.Advance(24 * time.Hour)
		sendDue(t, w, 0)
		if n := env.only(t); n.Status != outbox.EmailFailed || n.Attempts != 1 ||
			n.LastError != "the mail server refused the recipient (550 5.1.1)" {
			t.Errorf("%+v", n)
		}
	})
	t.Run("at once when the data cannot be rendered", func(t *testing.T) {
		env := newWorkerEnv(t, smtpOptions{})
		ctx := context.Background()
		// An email Enqueue would refuse, as from an older release's data.
		err := env.db.InAccount(ctx, env.account, func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO outbox (account_id, kind, recipient, data)
				VALUES ($1, 'sftp_enabled', 'ada@example.com', '{"UserName": "Ada"}')`, env.account)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sendDue(t, env.worker(), 1)
		if n := env.only(t); n.Status != outbox.EmailFailed || n.LastError != "the email could not be composed" {
			t.Errorf("%+v", n)
		}
		if len(env.smtp.Mails()) != 0 {
			t.Error("an incomplete email was sent")
		}
	})
}

func TestRestartedWorkerDoesNotResend(t *testing.T) {
	env := newWorkerEnv(t, smtpOptions{})
	env.enqueue(t, "ada@example.com", samples[outbox.EmailPasswordReset].data)
	sendDue(t, env.worker(), 1)

	restarted := env.worker()
	sendDue(t, restarted, 0)
	env.clock.Advance(24 * time.Hour) // well past any lease
	sendDue(t, restarted, 0)
	if n := len(env.smtp.Mails()); n != 1 {
		t.Errorf("server received %d messages, want 1", n)
	}
}

// A worker that died mid-send leaves the email SENDING. Another retries it
// once the lease is over, under the same Message-ID; if that was the last
// attempt allowed, the email is FAILED for a human to check instead.
func TestInterruptedSendIsRetriedAfterLease(t *testing.T) {
	for _, lastAttempt := range []bool{false, true} {
		env := newWorkerEnv(t, smtpOptions{})
		env.enqueue(t, "ada@example.com", samples[outbox.EmailInvitation].data)
		w := env.worker()
		if lastAttempt {
			w.MaxAttempts = 1
		}
		ctx := context.Background()
		err := env.db.CrossTenant(ctx, tenant.ScopeOutbox, func(tx *sqlx.Tx) error {
			e, err := outbox.ClaimEmail(ctx, tx, env.clock.Now(), w.Lease)
			if e == nil && err == nil {
				err = errors.New("nothing to claim")
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		sendDue(t, w, 0) // still leased to the dead worker
		env.clock.Advance(w.Lease)
		sendDue(t, w, 1)
		n := env.only(t)
		mails := env.smtp.Mails()
		if lastAttempt {
			if n.Status != outbox.EmailFailed || !strings.Contains(n.LastError, "may or may not have arrived") || len(mails) != 0 {
				t.Errorf("last attempt interrupted: %+v, %d sent", n, len(mails))
			}
			continue
		}
		if n.Status != outbox.EmailSent || n.Attempts != 2 || len(mails) != 1 {
			t.Fatalf("after the lease: %+v, %d sent", n, len(mails))
		}
		if id := parseMail(t, mails[0].Raw).Header.Get("Message-Id"); id != "<"+n.ID+"@skiff.test>" {
			t.Errorf("Message-ID %q", id)
		}
	}
}

func TestRacingWorkersSendEachEmailOnce(t *testing.T) {
	env := newWorkerEnv(t, smtpOptions{})
	const emails = 20
	for i := range emails {
		env.enqueue(t, "user"+string(rune('a'+i))+"@example.com", samples[outbox.EmailSSHKeyAdded].data)
	}
	workers := []*Worker{env.worker(), env.worker(), env.worker()}
	handled := make([]int, len(workers))
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { handled[i], errs[i] = w.SendDue(context.Background()) })
	}
	wg.Wait()
	total := 0
	for i := range workers {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		total += handled[i]
	}
	if total != emails {
		t.Errorf("workers handled %d emails, want %d", total, emails)
	}
	seen := map[string]bool{}
	for _, m := range env.smtp.Mails() {
		id := parseMail(t, m.Raw).Header.Get("Message-Id")
		if seen[id] {
			t.Errorf("%s sent twice", id)
		}
		seen[id] = true
	}
	if len(seen) != emails {
		t.Errorf("server received %d distinct emails, want %d", len(seen), emails)
	}
	for _, n := range env.notifications(t) {
		if n.Status != outbox.EmailSent || n.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts", n.Recipient, n.Status, n.Attempts)
		}
	}
}

// senderFunc adapts a function to Sender.
type senderFunc func(ctx context.Context, msg *Message) error

func (f senderFunc) Send(ctx context.Context, msg *Message) error { return f(ctx, msg) }

func TestRunFinishesTheEmailInHandWhenCancelled(t *testing.T) {
	env := newWorkerEnv(t, smtpOptions{})
	env.enqueue(t, "first@example.com", samples[outbox.EmailModuleTrialEnding].data)
	env.enqueue(t, "second@example.com", samples[outbox.EmailModuleTrialEnding].data)
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w := env.worker()
	w.Sender = senderFunc(func(ctx context.Context, msg *Message) error {
		once.Do(func() { close(started) })
		<-release
		return ctx.Err() // a cancelled send would fail here
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-started
	cancel()
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	status := map[outbox.EmailStatus]int{}
	for _, n := range env.notifications(t) {
		status[n.Status]++
	}
	if status[outbox.EmailSent] != 1 || status[outbox.EmailPending] != 1 {
		t.Errorf("statuses %v, want the email in hand SENT and the other still PENDING", status)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	w := &Worker{BaseDelay: 30 * time.Second, MaxDelay: time.Hour}
	for attempts, full := range map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 32 * time.Minute, 8: time.Hour, 40: time.Hour, 100: time.Hour,
	} {
		for range 50 {
			if d := w.backoff(attempts); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want between %v and %v", attempts, d, full/2, full)
			}
		}
	}
}

// Finished emails leave the outbox (and account.notifications) once past
// the retention; emails not yet sent stay however old.
func TestPurgeDeletesOnlyFinishedEmailsPastRetention(t *testing.T) {
	env := newWorkerEnv(t, smtpOptions{rcpt: func(_ int, to string) error {
		if to == "nobody@example.com" {
			return smtpReply(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		}
		return nil
	}})
	env.enqueue(t, "ada@example.com", samples[outbox.EmailModuleActivated].data)
	env.enqueue(t, "nobody@example.com", samples[outbox.EmailModuleActivated].data)
	w := env.worker()
	sendDue(t, w, 2)
	env.enqueue(t, "grace@example.com", samples[outbox.EmailModuleActivated].data) // stays PENDING
	ctx := context.Background()

	purge := func(want int) {
		t.Helper()
		n, err := w.Purge(ctx)
		if err != nil || n != want {
			t.Fatalf("Purge = %d, %v; want %d", n, err, want)
		}
	}
	env.clock.Advance(DefaultRetention - time.Hour)
	purge(0)
	if got := len(env.notifications(t)); got != 3 {
		t.Fatalf("%d emails before the retention ran out, want 3", got)
	}

	w.Retention = 0 // keep forever
	env.clock.Advance(2 * time.Hour)
	purge(0)

	w.Retention = DefaultRetention
	purge(2)
	if n := env.only(t); n.Recipient != "grace@example.com" || n.Status != outbox.EmailPending {
		t.Fatalf("left %+v, want grace's email still PENDING", n)
	}
	env.clock.Advance(365 * 24 * time.Hour)
	purge(0)

	// The database holds the line too: the worker's scope cannot delete an
	// email that is still to be sent.
	err := env.db.CrossTenant(ctx, tenant.ScopeOutbox, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox`)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Errorf("the outbox scope deleted %d unsent emails", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
