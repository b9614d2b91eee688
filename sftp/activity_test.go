package sftp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/activity"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// activityNode starts a node whose logins and sessions go to a recorder
// on the fixture's database (flushing every 50 ms), with the account's
// project folders, and returns both.
func (e *e2e) activityNode(t *testing.T) (*node, *activity.Recorder) {
	t.Helper()
	rec := activity.NewRecorder(e.svc.DB, activity.RecorderConfig{Node: "node-a", FlushEvery: 50 * time.Millisecond})
	rec.Start()
	n := e.startNode(t, func(c *Config) {
		c.Activity = rec
		b := c.Sessions.(*TenantBackend)
		b.Activity, b.Shares = rec, e.svc.Sharing
	}, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rec.Close(ctx)
	})
	return n, rec
}

// userActivity returns the user's events, oldest first, once there are at
// least want.
func (e *e2e) userActivity(t *testing.T, userID string, want int) []*activity.Event {
	t.Helper()
	var events []*activity.Event
	testkit.Eventually(t, fmt.Sprintf("%d activity events", want), func() bool {
		c, err := e.svc.Activity.UserEvents(e.owner, e.user.AccountID, userID, activity.Filter{}, tenant.Order{}, tenant.Page{First: 200})
		if err != nil {
			t.Fatal(err)
		}
		events = c.Items
		return len(events) >= want
	})
	slices.Reverse(events)
	return events
}

// shared creates a project folder as the owner and shares it with u.
func (e *e2e) shared(t *testing.T, name string, preset policy.Preset, users ...*tenant.User) *sharing.ProjectFolder {
	t.Helper()
	f, err := e.svc.Sharing.CreateProjectFolder(e.owner, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := e.svc.Sharing.ShareProjectFolder(e.owner, sharing.ShareInput{FolderID: f.ID, UserID: u.ID, Preset: preset}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func eventLine(e *activity.Event) string {
	s := string(e.Action) + " " + string(e.Outcome)
	if e.Path != "" {
		s += " " + e.Path
	}
	if e.TargetPath != "" {
		s += " -> " + e.TargetPath
	}
	if e.Bytes != nil {
		s += fmt.Sprintf(" %dB", *e.Bytes)
	}
	return s
}

// Every action of a real SFTP session is in the user's activity log, with
// who, the login used, from where, the path as the user sees it, bytes,
// duration, the node and, for refusals, the reason the operator needs.
func TestActivityRecordsEachAction(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n, _ := e.activityNode(t)
	readOnly := e.shared(t, "Handbook", policy.PresetRead, e.user)

	// A refused login: the reason is the real one, not what the client heard.
	if _, err := dial(t, n.addr, &ssh.ClientConfig{User: e.login, Auth: []ssh.AuthMethod{ssh.Password("not it")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}); err == nil {
		t.Fatal("a wrong password logged in")
	}

	conn, c := e.sftpClient(t, n.addr, e.login)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("mkdir", c.Mkdir("/My Files/reports"))
	f, err := c.Create("/My Files/reports/q3.csv")
	must("create", err)
	_, err = f.Write([]byte("0123456789"))
	must("write", err)
	must("close", f.Close())
	r, err := c.Open("/My Files/reports/q3.csv")
	must("open", err)
	buf := make([]byte, 100)
	got, _ := r.Read(buf)
	must("close download", r.Close())
	if got != 10 {
		t.Fatalf("read %d bytes", got)
	}
	must("rename", c.Rename("/My Files/reports/q3.csv", "/My Files/reports/q3-final.csv"))
	must("remove", c.Remove("/My Files/reports/q3-final.csv"))
	must("rmdir", c.RemoveDirectory("/My Files/reports"))
	if _, err := c.Create("/Projects Shared With Me/Handbook/new.txt"); !isDenied(err) {
		t.Fatalf("an upload to a READ folder: %v", err)
	}
	// An upload cut by the connection's end.
	cut, err := c.Create("/My Files/cut.bin")
	must("create", err)
	_, err = cut.Write(make([]byte, 4096))
	must("write", err)
	c.Close()
	conn.Close()

	events := e.userActivity(t, e.user.ID, 11)
	var lines []string
	for _, ev := range events {
		lines = append(lines, eventLine(ev))
	}
	want := []string{
		"LOGIN REFUSED",
		"LOGIN SUCCESS",
		"MKDIR SUCCESS /My Files/reports",
		"UPLOAD SUCCESS /My Files/reports/q3.csv 10B",
		"DOWNLOAD SUCCESS /My Files/reports/q3.csv 10B",
		"RENAME SUCCESS /My Files/reports/q3.csv -> /My Files/reports/q3-final.csv",
		"DELETE SUCCESS /My Files/reports/q3-final.csv",
		"RMDIR SUCCESS /My Files/reports",
		"PERMISSION_DENIED REFUSED /Projects Shared With Me/Handbook/new.txt",
		"UPLOAD INTERRUPTED /My Files/cut.bin 4096B",
		"LOGOUT SUCCESS",
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, ev := range events {
		if ev.AccountID != e.user.AccountID || ev.UserID != e.user.ID || ev.Login != e.login ||
			ev.ClientAddr != "127.0.0.1" || ev.Node != "node-a" || ev.SessionID == "" {
			t.Errorf("%s: account %s user %s login %q client %q node %q session %q", eventLine(ev),
				ev.AccountID, ev.UserID, ev.Login, ev.ClientAddr, ev.Node, ev.SessionID)
		}
	}
	if events[0].Reason != "wrong password" {
		t.Errorf("the refusal's reason is %q", events[0].Reason)
	}
	if r := events[8].Reason; !strings.HasPrefix(r, "UPLOAD: ") {
		t.Errorf("the permission refusal's reason is %q", r)
	}
	if events[3].DurationMS == nil || events[10].DurationMS == nil || events[10].Reason == "" {
		t.Errorf("a transfer or the session has no duration, or the logout no reason: %+v %+v", events[3], events[10])
	}
	if events[3].FolderID != nil {
		t.Errorf("an upload to My Files names a folder: %v", *events[3].FolderID)
	}
	_ = readOnly
}

// A key the user does not have, offered before the password that logs
// in, is no failed login; a key-only attempt that fails is one.
func TestActivityKeyRefusals(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n, _ := e.activityNode(t)
	stranger := ed25519Signer(t)
	conn, err := dial(t, n.addr, &ssh.ClientConfig{User: e.login, Auth: []ssh.AuthMethod{ssh.PublicKeys(stranger), ssh.Password(e.password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if _, err := dial(t, n.addr, &ssh.ClientConfig{User: e.login, Auth: []ssh.AuthMethod{ssh.PublicKeys(stranger)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}); err == nil {
		t.Fatal("an unknown key logged in")
	}
	events := e.userActivity(t, e.user.ID, 3)
	var lines []string
	for _, ev := range events {
		lines = append(lines, eventLine(ev)+" "+ev.Reason)
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "LOGIN SUCCESS") || !strings.HasPrefix(lines[1], "LOGOUT SUCCESS") ||
		!strings.HasPrefix(lines[2], "LOGIN REFUSED key SHA256:") || !strings.HasSuffix(lines[2], "is not one of the user's keys") {
		t.Errorf("events:\n%s", strings.Join(lines, "\n"))
	}
}

// OpenSSH's cp is copy-data: one COPY event with the bytes, not a download.
func TestActivityRecordsCopy(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n, _ := e.activityNode(t)
	e.writeHome(t, "a.txt", []byte("copy me"))
	if out, err := (openSSH{password: e.password}).run(t, n.addr, e.login, "cp a.txt b.txt"); err != nil {
		t.Fatalf("sftp cp: %v\n%s", err, out)
	}
	events := e.userActivity(t, e.user.ID, 4)
	var lines []string
	for _, ev := range events {
		lines = append(lines, eventLine(ev))
	}
	if !slices.Contains(lines, "COPY SUCCESS /My Files/a.txt -> /My Files/b.txt 7B") ||
		slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "DOWNLOAD") }) {
		t.Errorf("events:\n%s", strings.Join(lines, "\n"))
	}
}

// 100 uploads are written in a handful of statements, not 100.
func TestActivityBatchesWrites(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n, rec := e.activityNode(t)
	conn, c := e.sftpClient(t, n.addr, e.login)
	for i := range 100 {
		f, err := c.Create(fmt.Sprintf("/My Files/f%03d.txt", i))
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("x"))
		f.Close()
	}
	c.Close()
	conn.Close()
	e.userActivity(t, e.user.ID, 102) // login, 100 uploads, logout
	st := rec.Stats()
	t.Logf("recorder: %+v", st)
	if st.Recorded < 102 || st.Inserts > 30 || st.Spilled != 0 {
		t.Errorf("%d events in %d INSERT statements (%d spilled); want >= 102 in a few batches", st.Recorded, st.Inserts, st.Spilled)
	}
}

// digestEmails are the upload digests in the account's outbox, by recipient.
func (e *e2e) digestEmails(t *testing.T) map[string][]map[string]any {
	t.Helper()
	type row struct {
		To   string `db:"recipient"`
		Data []byte `db:"data"`
	}
	var rows []row
	err := e.svc.DB.InAccount(context.Background(), e.user.AccountID, func(tx *sqlx.Tx) error {
		return tx.SelectContext(context.Background(), &rows, `SELECT recipient, data FROM outbox
			WHERE kind = 'folder_upload_digest' ORDER BY created_at, id`)
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]map[string]any{}
	for _, r := range rows {
		var d map[string]any
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		out[r.To] = append(out[r.To], d)
	}
	return out
}

// A member who turned notifications on gets one digest per folder per
// interval listing the completed uploads; a non-member gets none, and a
// member who loses access stops getting them.
func TestActivityFolderUploadDigests(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n, _ := e.activityNode(t)
	member, _ := e.newUser(t, e.owner, "mia")
	outsider, _ := e.newUser(t, e.owner, "nils")
	// The digests run on the real clock, as the sessions do, with an
	// interval and a settling time short enough for a test.
	e.svc.Activity.Base = &tenant.Base{DB: e.svc.DB, Now: time.Now}
	e.svc.Activity.DigestInterval, e.svc.Activity.DigestSettle = 10*time.Millisecond, 10*time.Millisecond
	pause := func() { time.Sleep(50 * time.Millisecond) } // past the interval and the settling time
	plans := e.shared(t, "Plans", policy.PresetWrite, e.user, member)
	specs := e.shared(t, "Specs", policy.PresetWrite, e.user, member)
	as := func(u *tenant.User) context.Context {
		return tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindUser, ID: u.ID,
			AccountID: u.AccountID, Role: u.Role, Name: u.Name, Email: u.Email})
	}
	for _, f := range []*sharing.ProjectFolder{plans, specs} {
		if on, err := e.svc.Activity.SetFolderUploadNotification(as(member), f.ID, true); err != nil || !on {
			t.Fatalf("turning notifications on: %v", err)
		}
	}
	if _, err := e.svc.Activity.SetFolderUploadNotification(as(outsider), plans.ID, true); tenant.ErrorCode(err) != tenant.ENotFound {
		t.Fatalf("a non-member turning notifications on: %v", err)
	}

	conn, c := e.sftpClient(t, n.addr, e.login)
	upload := func(p string, size int) {
		t.Helper()
		f, err := c.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(make([]byte, size))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		upload(fmt.Sprintf("/Projects Shared With Me/Plans/plan-%d.pdf", i), 1000+i)
	}
	upload("/Projects Shared With Me/Specs/spec.txt", 42)
	c.Close()
	conn.Close()
	e.userActivity(t, e.user.ID, 8)

	pause()
	sent, err := e.svc.Activity.SendDigests(context.Background())
	if err != nil || sent != 2 {
		t.Fatalf("SendDigests: %d sent, %v; want 2", sent, err)
	}
	digests := e.digestEmails(t)
	mine := digests[member.Email]
	if len(digests) != 1 || len(mine) != 2 {
		t.Fatalf("digests: %v", digests)
	}
	byFolder := map[string]map[string]any{}
	for _, d := range mine {
		byFolder[d["FolderName"].(string)] = d
	}
	uploads, _ := byFolder["Plans"]["Uploads"].([]any)
	if len(uploads) != 5 || byFolder["Plans"]["Count"] != 5.0 {
		t.Fatalf("the Plans digest lists %d uploads: %v", len(uploads), byFolder["Plans"])
	}
	first := uploads[0].(map[string]any)
	if first["Path"] != "/plan-0.pdf" || first["By"] != e.user.Name || first["Size"] != "1000 B" {
		t.Errorf("first upload listed as %v", first)
	}
	if s, _ := byFolder["Specs"]["Uploads"].([]any); len(s) != 1 {
		t.Errorf("the Specs digest: %v", byFolder["Specs"])
	}

	// Nothing new: no email. Then the member loses Specs; uploads to it
	// no longer reach them, while Plans' still do.
	pause()
	if sent, err := e.svc.Activity.SendDigests(context.Background()); err != nil || sent != 0 {
		t.Fatalf("a digest of nothing: %d sent, %v", sent, err)
	}
	if _, err := e.svc.Sharing.UnshareProjectFolder(e.owner, sharing.UnshareInput{FolderID: specs.ID, UserID: member.ID}); err != nil {
		t.Fatal(err)
	}
	conn, c = e.sftpClient(t, n.addr, e.login)
	upload("/Projects Shared With Me/Specs/spec-2.txt", 1)
	upload("/Projects Shared With Me/Plans/plan-9.pdf", 1)
	c.Close()
	conn.Close()
	e.userActivity(t, e.user.ID, 12)
	pause()
	if sent, err := e.svc.Activity.SendDigests(context.Background()); err != nil || sent != 1 {
		t.Fatalf("after losing Specs: %d sent, %v; want 1 (Plans)", sent, err)
	}
	if d := e.digestEmails(t)[member.Email]; len(d) != 3 || d[2]["FolderName"] != "Plans" {
		t.Errorf("digests after losing Specs: %v", d)
	}
}
