package domain_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
)

// moduleFixture is an account with its owner, a staff member and a service
// whose clock the test moves, on a database of its own.
type moduleFixture struct {
	t        *testing.T
	url      string // the database's, for other nodes and notification listeners
	svc      *domain.Domain
	mu       sync.Mutex
	now      time.Time
	sessions *endedSessions
	staff    context.Context
	account  *tenant.Account
	owner    *tenant.User
	ownerCtx context.Context
}

// endedSessions records the SFTP sessions the service asked to end.
type endedSessions struct {
	mu    sync.Mutex
	users []string
}

func (e *endedSessions) Disconnect(_, userID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users = append(e.users, userID)
}

func (e *endedSessions) DisconnectCredential(_, userID, keyID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users = append(e.users, userID+" (credential "+keyID+")")
}

func (e *endedSessions) DisconnectAccount(accountID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users = append(e.users, "every user of "+accountID)
}

func (e *endedSessions) ended() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.users...)
}

func newModuleFixture(t *testing.T) *moduleFixture {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	db, err := tenant.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	f := &moduleFixture{t: t, url: url, now: time.Now().UTC().Truncate(time.Second), sessions: &endedSessions{}}
	f.svc = domain.New(db)
	f.svc.Now = func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.now
	}
	f.svc.Sessions = f.sessions
	f.svc.SFTP.Config = sftpaccess.Config{Host: "sftp.skiff.test", Port: 2022, TrialDays: 14, TrialLicences: 5}
	// The credentials email lists the deployment's host keys; a stored row
	// is enough (generating real keys is the directory's job, and slow).
	if _, err := db.X.ExecContext(ctx, `INSERT INTO host_keys (account_id, algorithm, private_key, fingerprint)
		VALUES (NULL, 'ssh-ed25519', '\x00', 'SHA256:testhostkeyfingerprint')`); err != nil {
		t.Fatal(err)
	}
	st, err := f.svc.People.CreateStaff(tenant.SystemContext(ctx), "support@skiff.test", "Sam", "staff password 123")
	if err != nil {
		t.Fatal(err)
	}
	f.staff = tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindStaff, ID: st.ID, Name: st.Name, Email: st.Email})
	f.account, f.owner = f.newAccount("Acme", "olive@acme.test")
	f.ownerCtx = f.as(f.owner)
	return f
}

// newAccount makes another account with its owner.
func (f *moduleFixture) newAccount(name, ownerEmail string) (*tenant.Account, *tenant.User) {
	f.t.Helper()
	a, owner, err := f.svc.Accounts.CreateAccount(f.staff, account.CreateAccountInput{Name: name, OwnerEmail: ownerEmail, OwnerName: "Owner of " + name})
	if err != nil {
		f.t.Fatal(err)
	}
	return a, owner
}

func (f *moduleFixture) as(u *tenant.User) context.Context {
	return tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindUser, ID: u.ID, AccountID: u.AccountID, Role: u.Role, Name: u.Name, Email: u.Email})
}

func (f *moduleFixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// newUser adds a user to the fixture's account, as its owner.
func (f *moduleFixture) newUser(email string, role tenant.Role) *tenant.User {
	f.t.Helper()
	u, err := f.svc.People.CreateUser(f.ownerCtx, people.CreateUserInput{Email: email, Name: strings.Split(email, "@")[0], Role: role})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *moduleFixture) accountNow(id string) *tenant.Account {
	f.t.Helper()
	a, err := f.svc.Accounts.Account(f.staff, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *moduleFixture) startTrial() {
	f.t.Helper()
	if _, err := f.svc.SFTP.StartSFTPTrial(f.ownerCtx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *moduleFixture) activate(licences int) *sftpaccess.LicenceChange {
	f.t.Helper()
	c, err := f.svc.SFTP.ActivateSFTPModule(f.staff, f.account.ID, licences)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *moduleFixture) enable(u *tenant.User) {
	f.t.Helper()
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, u.ID, true); err != nil {
		f.t.Fatalf("enable SFTP for %s: %v", u.Email, err)
	}
}

// wantCode fails unless err carries code; for user errors it also checks that
// the message is one a user can act on.
func (f *moduleFixture) wantCode(err error, code tenant.Code, what string) {
	f.t.Helper()
	if got := tenant.ErrorCode(err); got != code {
		f.t.Fatalf("%s: got %v (code %q), want code %q", what, err, got, code)
	}
	if tenant.IsUserError(err) && tenant.ErrorMessage(err) == "" {
		f.t.Fatalf("%s: user error without a message", what)
	}
}

// outboxEmail is an email as the outbox holds it.
type outboxEmail struct {
	To   string
	Data map[string]any
	Raw  string
}

// emails returns the outbox's emails of a kind, oldest first. It reads as the
// database owner, past row-level security.
func (f *moduleFixture) emails(kind outbox.EmailKind) []outboxEmail {
	f.t.Helper()
	var rows []struct {
		To   string `db:"recipient"`
		Data string `db:"data"`
	}
	if err := f.svc.DB.X.Select(&rows, `SELECT recipient, data::text AS data FROM outbox WHERE kind = $1 ORDER BY created_at, id`, string(kind)); err != nil {
		f.t.Fatal(err)
	}
	out := make([]outboxEmail, 0, len(rows))
	for _, r := range rows {
		e := outboxEmail{To: r.To, Raw: r.Data}
		if err := json.Unmarshal([]byte(r.Data), &e.Data); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func (f *moduleFixture) emailsTo(kind outbox.EmailKind, to string) []outboxEmail {
	var out []outboxEmail
	for _, e := range f.emails(kind) {
		if e.To == to {
			out = append(out, e)
		}
	}
	return out
}

func TestSFTPModuleLifecycle(t *testing.T) {
	f := newModuleFixture(t)
	admin := f.newUser("ada@acme.test", tenant.RoleAdmin)
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	v := f.newUser("vic@acme.test", tenant.RoleUser)

	// Before any trial, SFTP cannot be turned on, and the message says how to start.
	_, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, u.ID, true)
	f.wantCode(err, tenant.EConflict, "enable with no module")
	if !strings.Contains(tenant.ErrorMessage(err), "trial") {
		t.Errorf("message %q does not say how to get the module", tenant.ErrorMessage(err))
	}

	// Only the owner starts the trial.
	_, err = f.svc.SFTP.StartSFTPTrial(f.as(admin))
	f.wantCode(err, tenant.EForbidden, "admin starts trial")
	start := f.svc.Now()
	a, err := f.svc.SFTP.StartSFTPTrial(f.ownerCtx)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.svc.SFTP.SFTPModuleStatus(a); got != tenant.ModuleTrial {
		t.Fatalf("status after start = %s, want TRIAL", got)
	}
	if a.SFTPTrialEndsAt == nil || !a.SFTPTrialEndsAt.Equal(start.Add(14*24*time.Hour)) || a.SFTPLicences != 5 {
		t.Fatalf("trial ends %v with %d licences, want %v and 5", a.SFTPTrialEndsAt, a.SFTPLicences, start.Add(14*24*time.Hour))
	}
	if got := f.emailsTo(outbox.EmailModuleTrialStarted, f.owner.Email); len(got) != 1 {
		t.Fatalf("trial-started emails to the owner: %d, want 1", len(got))
	}
	_, err = f.svc.SFTP.StartSFTPTrial(f.ownerCtx)
	f.wantCode(err, tenant.EConflict, "second trial")

	f.enable(u)
	creds, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, u.ID)
	if err != nil || creds == nil {
		t.Fatalf("credentials after enabling: %v, %v", creds, err)
	}
	mails := f.emailsTo(outbox.EmailSFTPEnabled, u.Email)
	if len(mails) != 1 {
		t.Fatalf("sftp_enabled emails to the user: %d, want 1", len(mails))
	}
	m := mails[0].Data
	if m["Login"] != creds.Login || m["Host"] != "sftp.skiff.test" || m["Port"] != float64(2022) {
		t.Errorf("credentials email = %s, want login %s on sftp.skiff.test:2022", mails[0].Raw, creds.Login)
	}
	if !strings.Contains(mails[0].Raw, "SHA256:testhostkeyfingerprint") {
		t.Errorf("credentials email has no host-key fingerprint: %s", mails[0].Raw)
	}
	if strings.Contains(strings.ToLower(mails[0].Raw), "password") {
		t.Errorf("credentials email mentions a password: %s", mails[0].Raw)
	}

	// Fourteen days on, the trial reads EXPIRED: no new access, but nothing is lost.
	f.advance(14 * 24 * time.Hour)
	if got := f.svc.SFTP.SFTPModuleStatus(f.accountNow(f.account.ID)); got != tenant.ModuleExpired {
		t.Fatalf("status after 14 days = %s, want EXPIRED", got)
	}
	_, err = f.svc.SFTP.SetSFTPAccess(f.ownerCtx, v.ID, true)
	f.wantCode(err, tenant.EConflict, "enable after expiry")
	if !strings.Contains(tenant.ErrorMessage(err), "trial has ended") {
		t.Errorf("expiry message %q does not say the trial ended", tenant.ErrorMessage(err))
	}
	_, err = f.svc.SFTP.StartSFTPTrial(f.ownerCtx)
	f.wantCode(err, tenant.EConflict, "trial after expiry")
	// Turning access off is always allowed.
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, u.ID, false); err != nil {
		t.Fatalf("disable after expiry: %v", err)
	}
	f.enableFails(u, tenant.EConflict)

	// Support activates after the purchase: the same credentials work again.
	// The one licence in use is the owner's, from the trial's start.
	c := f.activate(10)
	if got := f.svc.SFTP.SFTPModuleStatus(c.Account); got != tenant.ModuleActive || c.Licences != (sftpaccess.Licences{Purchased: 10, Used: 1, Available: 9}) || c.Warning != "" {
		t.Fatalf("activation = %s %+v %q", got, c.Licences, c.Warning)
	}
	if got := f.emailsTo(outbox.EmailModuleActivated, f.owner.Email); len(got) != 1 {
		t.Fatalf("activated emails to the owner: %d, want 1", len(got))
	}
	f.enable(u)
	again, err := f.svc.SFTP.SFTPCredentials(f.as(u), u.ID)
	if err != nil || again == nil || again.Login != creds.Login {
		t.Fatalf("credentials after activation = %+v, %v; want login %s", again, err, creds.Login)
	}
	f.enable(v)
	_, err = f.svc.SFTP.ActivateSFTPModule(f.staff, f.account.ID, 10)
	f.wantCode(err, tenant.EConflict, "activate an active module")
	_, err = f.svc.SFTP.StartSFTPTrial(f.ownerCtx)
	f.wantCode(err, tenant.EConflict, "trial once active")

	// Every step is in the audit trail.
	events, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{Kinds: []string{"sftp_module.*"}}, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events.Items {
		kinds = append(kinds, e.Kind)
	}
	if strings.Join(kinds, ",") != "sftp_module.activated,sftp_module.trial_started" {
		t.Errorf("module audit events = %v", kinds)
	}
}

func (f *moduleFixture) enableFails(u *tenant.User, code tenant.Code) {
	f.t.Helper()
	_, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, u.ID, true)
	f.wantCode(err, code, "enable "+u.Email)
}

func TestActivationWithoutTrialForbidsTrial(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(2)
	_, err := f.svc.SFTP.StartSFTPTrial(f.ownerCtx)
	f.wantCode(err, tenant.EConflict, "trial after activation")
	if got := f.accountNow(f.account.ID); got.SFTPStatus != string(tenant.ModuleActive) || got.SFTPLicences != 2 {
		t.Fatalf("account after refused trial: %s with %d licences", got.SFTPStatus, got.SFTPLicences)
	}
}

func TestStaffModuleOperationsRefuseOthers(t *testing.T) {
	f := newModuleFixture(t)
	other, otherOwner := f.newAccount("Globex", "gina@globex.test")
	plain := f.newUser("pat@acme.test", tenant.RoleUser)
	anon := context.Background()

	for name, ctx := range map[string]context.Context{"owner": f.ownerCtx, "user": f.as(plain)} {
		_, err := f.svc.SFTP.ActivateSFTPModule(ctx, f.account.ID, 5)
		f.wantCode(err, tenant.EForbidden, name+" activates")
		_, err = f.svc.SFTP.SetSFTPLicences(ctx, f.account.ID, 5)
		f.wantCode(err, tenant.EForbidden, name+" sets licences")
		_, err = f.svc.SFTP.SuspendSFTPModule(ctx, f.account.ID)
		f.wantCode(err, tenant.EForbidden, name+" suspends")
		_, err = f.svc.SFTP.SFTPModuleRequests(ctx, true, tenant.Page{})
		f.wantCode(err, tenant.EForbidden, name+" lists requests")
		_, err = f.svc.SFTP.SendTrialEndingReminders(ctx)
		f.wantCode(err, tenant.EForbidden, name+" sends reminders")
	}
	_, err := f.svc.SFTP.ActivateSFTPModule(anon, f.account.ID, 5)
	f.wantCode(err, tenant.EUnauthenticated, "anonymous activates")

	for _, id := range []string{uuid.NewString(), "not-an-id", ""} {
		_, err := f.svc.SFTP.ActivateSFTPModule(f.staff, id, 5)
		f.wantCode(err, tenant.ENotFound, "activate "+id)
		_, err = f.svc.SFTP.SetSFTPLicences(f.staff, id, 5)
		f.wantCode(err, tenant.ENotFound, "set licences "+id)
		_, err = f.svc.SFTP.SuspendSFTPModule(f.staff, id)
		f.wantCode(err, tenant.ENotFound, "suspend "+id)
		_, err = f.svc.SFTP.SFTPLicences(f.staff, id)
		f.wantCode(err, tenant.ENotFound, "licences of "+id)
	}
	for _, n := range []int{-1, sftpaccess.MaxLicences + 1} {
		_, err := f.svc.SFTP.SetSFTPLicences(f.staff, f.account.ID, n)
		f.wantCode(err, tenant.EInvalid, "licences "+tenant.Itoa(n))
		if tenant.ErrorField(err) != "licences" {
			t.Errorf("licences %d: error names field %q", n, tenant.ErrorField(err))
		}
	}
	c, err := f.svc.SFTP.SetSFTPLicences(f.staff, f.account.ID, sftpaccess.MaxLicences)
	if err != nil || c.Licences.Purchased != sftpaccess.MaxLicences {
		t.Fatalf("set the maximum: %+v, %v", c, err)
	}

	// Licences are for the account's admins and staff; another tenant's are not found.
	_, err = f.svc.SFTP.SFTPLicences(f.as(plain), f.account.ID)
	f.wantCode(err, tenant.EForbidden, "plain user reads licences")
	_, err = f.svc.SFTP.SFTPLicences(f.as(otherOwner), f.account.ID)
	f.wantCode(err, tenant.ENotFound, "other tenant reads licences")
	if _, err := f.svc.SFTP.SFTPLicences(f.staff, other.ID); err != nil {
		t.Fatalf("staff reads licences: %v", err)
	}
	// Suspending a module that was never set up is a user error.
	_, err = f.svc.SFTP.SuspendSFTPModule(f.staff, other.ID)
	f.wantCode(err, tenant.EConflict, "suspend a module never set up")
}

func TestSuspendAndReactivate(t *testing.T) {
	f := newModuleFixture(t)
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	v := f.newUser("vic@acme.test", tenant.RoleUser)
	f.activate(5)
	f.enable(u)
	f.enable(v)
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, v.ID, false); err != nil {
		t.Fatal(err)
	}
	if got := f.sessions.ended(); len(got) != 1 || got[0] != v.ID {
		t.Fatalf("sessions ended on disable: %v, want [%s]", got, v.ID)
	}

	a, err := f.svc.SFTP.SuspendSFTPModule(f.staff, f.account.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.svc.SFTP.SFTPModuleStatus(a); got != tenant.ModuleSuspended || got.AllowsLogin() {
		t.Fatalf("status after suspension = %s", got)
	}
	if got := f.sessions.ended(); len(got) != 2 || got[1] != "every user of "+f.account.ID {
		t.Fatalf("sessions ended on suspension: %v, want every session of the account", got)
	}
	f.enableFails(v, tenant.EConflict)
	_, err = f.svc.SFTP.SuspendSFTPModule(f.staff, f.account.ID)
	f.wantCode(err, tenant.EConflict, "suspend twice")

	f.activate(5)
	// u's and the owner's (from the first activation, kept through the suspension).
	if l, err := f.svc.SFTP.SFTPLicences(f.ownerCtx, f.account.ID); err != nil || *l != (sftpaccess.Licences{Purchased: 5, Used: 2, Available: 3}) {
		t.Fatalf("licences after reactivation = %+v, %v", l, err)
	}
	f.enable(v)
}

func TestLicenceRaceNeverOversells(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(3) // the owner takes the first licence
	f.enable(f.newUser("first@acme.test", tenant.RoleUser))
	var users []*tenant.User
	for i := range 20 {
		users = append(users, f.newUser("racer"+tenant.Itoa(i)+"@acme.test", tenant.RoleUser))
	}

	errs := make([]error, len(users))
	var wg sync.WaitGroup
	startLine := make(chan struct{})
	for i, u := range users {
		wg.Go(func() {
			<-startLine
			_, errs[i] = f.svc.SFTP.SetSFTPAccess(f.ownerCtx, u.ID, true)
		})
	}
	close(startLine)
	wg.Wait()

	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case tenant.ErrorCode(err) != tenant.ELimit || !tenant.IsUserError(err):
			t.Errorf("racer %d: %v, want a licence user error", i, err)
		case !strings.Contains(tenant.ErrorMessage(err), "3 of 3 are in use") || !strings.Contains(tenant.ErrorMessage(err), "request more licences"):
			t.Errorf("racer %d: message %q does not say how many are used and how to get more", i, tenant.ErrorMessage(err))
		}
	}
	if won != 1 {
		t.Fatalf("%d racers got the last licence, want exactly 1", won)
	}
	l, err := f.svc.SFTP.SFTPLicences(f.staff, f.account.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *l != (sftpaccess.Licences{Purchased: 3, Used: 3, Available: 0}) {
		t.Fatalf("licences after the race = %+v", *l)
	}
	// The owner's credentials came in the module_activated email.
	if got := len(f.emails(outbox.EmailSFTPEnabled)); got != 2 {
		t.Fatalf("%d credentials emails, want 2 (one per enabled user but the owner)", got)
	}
}

func TestLoweringLicencesBelowUsed(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(3) // the owner takes the first licence
	var users []*tenant.User
	for _, name := range []string{"a", "b", "d"} {
		users = append(users, f.newUser(name+"@acme.test", tenant.RoleUser))
	}
	for _, u := range users[:2] {
		f.enable(u)
	}

	c, err := f.svc.SFTP.SetSFTPLicences(f.staff, f.account.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Licences != (sftpaccess.Licences{Purchased: 1, Used: 3, Available: 0}) {
		t.Fatalf("licences after lowering = %+v", c.Licences)
	}
	if want := "3 users have SFTP access but only 1 licence: no one else can be enabled until 2 are turned off"; c.Warning != want {
		t.Fatalf("warning = %q, want %q", c.Warning, want)
	}
	// Nobody lost access, and nobody else gets it.
	if l, _ := f.svc.SFTP.SFTPLicences(f.ownerCtx, f.account.ID); l.Used != 3 {
		t.Fatalf("used after lowering = %d, want 3", l.Used)
	}
	f.enableFails(users[2], tenant.ELimit)

	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, users[0].ID, false); err != nil {
		t.Fatal(err)
	}
	f.enableFails(users[2], tenant.ELimit) // 2 of 1 still in use
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, users[1].ID, false); err != nil {
		t.Fatal(err)
	}
	f.enableFails(users[2], tenant.ELimit) // 1 of 1: the licence is the owner's

	c, err = f.svc.SFTP.SetSFTPLicences(f.staff, f.account.ID, 2)
	if err != nil || c.Warning != "" {
		t.Fatalf("raising licences: %+v, %v", c, err)
	}
	f.enable(users[2])

	events, err := f.svc.Audit.Events(f.staff, f.account.ID, audit.Filter{Kinds: []string{"sftp_module.licences_changed"}}, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 2 || !strings.Contains(string(events.Items[1].Before), `"licences": 3`) ||
		!strings.Contains(string(events.Items[1].After), `"licences": 1`) {
		t.Fatalf("licence changes in the audit trail: %d events, oldest %s -> %s", len(events.Items),
			events.Items[len(events.Items)-1].Before, events.Items[len(events.Items)-1].After)
	}
	if events.Items[0].ActorKind != "STAFF" {
		t.Errorf("licence change recorded as made by %s, want STAFF", events.Items[0].ActorKind)
	}
}

func TestLicenceFailureLeavesNoEmail(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(2) // the owner takes one
	f.enable(f.newUser("first@acme.test", tenant.RoleUser))
	late := f.newUser("late@acme.test", tenant.RoleUser)

	f.enableFails(late, tenant.ELimit)
	if got := f.emailsTo(outbox.EmailSFTPEnabled, late.Email); len(got) != 0 {
		t.Fatalf("refused enabling left %d credentials emails", len(got))
	}
	if c, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, late.ID); err != nil || c != nil {
		t.Fatalf("refused enabling issued credentials: %+v, %v", c, err)
	}

	// Creating a user with SFTP on rolls back as a whole: no user, no email.
	_, err := f.svc.People.CreateUser(f.ownerCtx, people.CreateUserInput{Email: "new@acme.test", Name: "New", SFTPEnabled: true})
	f.wantCode(err, tenant.ELimit, "create with SFTP and no licence")
	if got := f.emailsTo(outbox.EmailSFTPEnabled, "new@acme.test"); len(got) != 0 {
		t.Fatalf("refused creation left %d credentials emails", len(got))
	}
	if all := len(f.emails(outbox.EmailSFTPEnabled)); all != 1 {
		t.Fatalf("%d credentials emails in the outbox, want only the first user's", all)
	}
}

func TestSFTPModuleRequests(t *testing.T) {
	f := newModuleFixture(t)
	_, otherOwner := f.newAccount("Globex", "gina@globex.test")
	admin := f.newUser("ada@acme.test", tenant.RoleAdmin)
	plain := f.newUser("pat@acme.test", tenant.RoleUser)

	_, err := f.svc.SFTP.RequestSFTPModule(f.as(plain), "please")
	f.wantCode(err, tenant.EForbidden, "plain user requests")
	_, err = f.svc.SFTP.RequestSFTPModule(f.as(admin), strings.Repeat("x", 2001))
	f.wantCode(err, tenant.EInvalid, "overlong message")

	r, err := f.svc.SFTP.RequestSFTPModule(f.as(admin), "  We need 12 licences.  ")
	if err != nil {
		t.Fatal(err)
	}
	if r.Message != "We need 12 licences." || r.RequestedByEmail != admin.Email || r.AccountName != "Acme" {
		t.Fatalf("request = %+v", r)
	}
	if a := f.accountNow(f.account.ID); a.SFTPRequestedAt == nil {
		t.Fatal("the account does not show the request")
	}
	f.advance(time.Minute)
	if _, err := f.svc.SFTP.RequestSFTPModule(f.as(otherOwner), ""); err != nil {
		t.Fatal(err)
	}

	// Staff see the queue across tenants, oldest first, a page at a time.
	first, err := f.svc.SFTP.SFTPModuleRequests(f.staff, true, tenant.Page{First: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Items) != 1 || first.Items[0].ID != r.ID || !first.HasNext {
		t.Fatalf("first page = %+v", first)
	}
	second, err := f.svc.SFTP.SFTPModuleRequests(f.staff, true, tenant.Page{First: 1, After: first.Cursors[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Items) != 1 || second.Items[0].AccountName != "Globex" || second.HasNext {
		t.Fatalf("second page = %+v", second)
	}

	// Activation handles the account's open requests.
	f.activate(12)
	open, err := f.svc.SFTP.SFTPModuleRequests(f.staff, true, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(open.Items) != 1 || open.Items[0].AccountName != "Globex" {
		t.Fatalf("open requests after activation = %d", len(open.Items))
	}
	all, err := f.svc.SFTP.SFTPModuleRequests(f.staff, false, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 2 || all.Items[0].HandledAt == nil {
		t.Fatalf("all requests after activation = %+v", all.Items)
	}
}

func TestTrialEndingRemindersGoOutOnce(t *testing.T) {
	f := newModuleFixture(t)
	system := tenant.SystemContext(context.Background())
	f.startTrial()
	later, _ := f.newAccount("Globex", "gina@globex.test")
	_ = later // never starts a trial: never reminded

	f.advance(10 * 24 * time.Hour) // 4 days left
	if n, err := f.svc.SFTP.SendTrialEndingReminders(system); err != nil || n != 0 {
		t.Fatalf("4 days before the end: %d reminders, %v", n, err)
	}
	f.advance(25 * time.Hour) // 2 days 23 hours left
	if n, err := f.svc.SFTP.SendTrialEndingReminders(system); err != nil || n != 1 {
		t.Fatalf("3 days before the end: %d reminders, %v", n, err)
	}
	f.advance(time.Hour)
	if n, err := f.svc.SFTP.SendTrialEndingReminders(f.staff); err != nil || n != 0 {
		t.Fatalf("the hour after: %d reminders, %v", n, err)
	}
	mails := f.emails(outbox.EmailModuleTrialEnding)
	if len(mails) != 1 || mails[0].To != f.owner.Email || mails[0].Data["Licences"] != float64(5) {
		t.Fatalf("trial-ending emails = %+v", mails)
	}
}

func TestTrialEndingReminderSkipsEndedTrials(t *testing.T) {
	f := newModuleFixture(t)
	f.startTrial()
	f.advance(15 * 24 * time.Hour)
	if n, err := f.svc.SFTP.SendTrialEndingReminders(tenant.SystemContext(context.Background())); err != nil || n != 0 {
		t.Fatalf("after the trial ended: %d reminders, %v", n, err)
	}
}
