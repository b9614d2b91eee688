package domain_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"github.com/skiffhq/skiff/tenant/sharing"

	"github.com/pkg/sftp"
	skiffsftp "github.com/skiffhq/skiff/sftp"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
)

const (
	password = "correct horse battery"
	mount    = vfs.SharedMountPath
)

// world is one account with the SFTP module on trial, its owner, and the
// pieces an SFTP session is made of: the directory that resolves logins,
// file storage, and a clock for the sessions' caches.
type world struct {
	t       *testing.T
	url     string // the test database
	svc     *domain.Domain
	dir     *sftplogin.Directory
	base    string // storage base on disk
	store   *storage.Local
	clock   clock
	account *tenant.Account
	owner   *tenant.User
	ended   *sessionLog
	quotas  bool // connect's sessions are charged to the storage quotas
	// reserves counts the calls of Reserve by connect's sessions (quotas).
	reserves atomic.Int64
}

// clock is a settable clock for the sessions' caches.
// clock moves past the sessions' cache TTL, so the next operation asks again.
type clock struct{ *testkit.Clock }

// Advance moves past the sessions' cache TTL.
func (c clock) Advance() { c.Clock.Advance(2 * vfs.DefaultCacheTTL) }

// sessionLog records the users whose sessions the service ended.
type sessionLog struct {
	mu    sync.Mutex
	users []string
}

func (l *sessionLog) Disconnect(accountID, userID string) {
	l.mu.Lock()
	l.users = append(l.users, userID)
	l.mu.Unlock()
}

func (l *sessionLog) DisconnectCredential(_, userID, keyID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.users = append(l.users, userID+" (credential "+keyID+")")
}

func (l *sessionLog) DisconnectAccount(accountID string) {
	l.mu.Lock()
	l.users = append(l.users, "every user of "+accountID)
	l.mu.Unlock()
}

func (l *sessionLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.users
	l.users = nil
	return out
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	db, err := tenant.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{t: t, url: url, svc: domain.New(db), dir: sftplogin.NewDirectory(db), ended: &sessionLog{},
		clock: clock{testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}}
	w.svc.SFTP.Config.TrialLicences = 50
	w.svc.Sessions = w.ended
	w.base = filepath.Join(t.TempDir(), "files")
	if w.store, err = storage.NewLocal(w.base); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	w.account, w.owner, err = w.svc.Accounts.CreateAccount(tenant.SystemContext(ctx), account.CreateAccountInput{
		Name: "Acme", OwnerEmail: "owner@acme.example", OwnerName: "Olive Owner", OwnerPassword: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.SFTP.StartSFTPTrial(w.as(w.owner)); err != nil {
		t.Fatal(err)
	}
	if w.owner, err = w.svc.SFTP.SetSFTPAccess(w.as(w.owner), w.owner.ID, true); err != nil {
		t.Fatal(err)
	}
	return w
}

// as is a request context of u.
func (w *world) as(u *tenant.User) context.Context {
	return tenant.WithPrincipal(context.Background(), &tenant.Principal{
		Kind: tenant.KindUser, ID: u.ID, AccountID: u.AccountID, Role: u.Role, Name: u.Name, Email: u.Email,
	})
}

// user adds a user with SFTP access and a password, in the default group.
func (w *world) user(name string, role tenant.Role) *tenant.User {
	w.t.Helper()
	u, err := w.svc.People.CreateUser(w.as(w.owner), people.CreateUserInput{
		Email: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@acme.example", Name: name,
		Role: role, Password: password, SFTPEnabled: true,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

// builtin returns one of the account's built-in groups.
func (w *world) builtin(b sharing.BuiltinGroup) *sharing.Group {
	w.t.Helper()
	c, err := w.svc.Sharing.Groups(w.as(w.owner), w.account.ID, tenant.Order{}, tenant.Page{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, g := range c.Items {
		if g.Builtin == b {
			return g
		}
	}
	w.t.Fatalf("no %s group", b)
	return nil
}

func (w *world) setGroup(u *tenant.User, g *sharing.Group) {
	w.t.Helper()
	if _, err := w.svc.Sharing.SetUserGroup(w.as(w.owner), u.ID, g.ID); err != nil {
		w.t.Fatal(err)
	}
}

// folder creates a project folder as u.
func (w *world) folder(u *tenant.User, name string) *sharing.ProjectFolder {
	w.t.Helper()
	f, err := w.svc.Sharing.CreateProjectFolder(w.as(u), name)
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

// share shares f with u as by.
func (w *world) share(by *tenant.User, f *sharing.ProjectFolder, u *tenant.User, preset policy.Preset) {
	w.t.Helper()
	if _, err := w.svc.Sharing.ShareProjectFolder(w.as(by), sharing.ShareInput{FolderID: f.ID, UserID: u.ID, Preset: preset}); err != nil {
		w.t.Fatal(err)
	}
}

// disk is where a project folder's files are.
func (w *world) disk(f *sharing.ProjectFolder) string {
	w.t.Helper()
	r, err := w.store.ProjectFolder(w.account.ID, f.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	r.Close()
	return filepath.Join(w.base, w.account.ID, "folders", f.ID)
}

// home is where a user's My Files are, created if needed.
func (w *world) home(u *tenant.User) string {
	w.t.Helper()
	r, err := w.store.UserHome(w.account.ID, u.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	r.Close()
	return filepath.Join(w.base, w.account.ID, "users", u.ID)
}

// login logs u in through the directory, as the SSH server does.
func (w *world) login(u *tenant.User) *sftplogin.Login {
	w.t.Helper()
	creds, err := w.svc.SFTP.SFTPCredentials(w.as(w.owner), u.ID)
	if err != nil || creds == nil {
		w.t.Fatalf("credentials of %s: %v", u.Name, err)
	}
	addr := netip.MustParseAddr("127.0.0.1")
	l, err := w.dir.PasswordLogin(context.Background(), addr, addr, creds.Login, password)
	if err != nil {
		w.t.Fatalf("login of %s: %v", u.Name, err)
	}
	return l
}

// connect logs u in and opens an SFTP session for them, wired as the SSH
// server wires it, with a pkg/sftp client over an in-memory pipe.
func (w *world) connect(u *tenant.User) *sftp.Client {
	w.t.Helper()
	l := w.login(u)
	s, err := vfs.NewSession(context.Background(), vfs.Config{
		AccountID: l.AccountID, UserID: l.UserID, Jailed: l.Jailed,
		Storage: w.store,
		Gate: vfs.GateFunc(func(ctx context.Context) error {
			return w.dir.SessionAllowed(ctx, l.AccountID, l.UserID, l.Jailed)
		}),
		Shares: skiffsftp.SessionShares(w.svc.Sharing, l.AccountID, l.UserID),
		Now:    w.clock.Now,
		Logger: slog.New(slog.DiscardHandler),
		Quota:  w.sessionQuota(l.AccountID),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	server, client := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- s.Serve(server) }()
	c, err := sftp.NewClientPipe(client, client)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		c.Close()
		client.Close()
		// The gate ending a session is what some tests are after; they
		// see it through the client.
		if err := <-served; err != nil && !errors.Is(err, vfs.ErrDenied) {
			w.t.Errorf("Serve: %v", err)
		}
		s.Close()
	})
	return c
}

func put(c *sftp.Client, p, content string) error {
	f, err := c.Create(p)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte(content)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func get(c *sftp.Client, p string) (string, error) {
	f, err := c.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

func ls(c *sftp.Client, p string) ([]string, error) {
	infos, err := c.ReadDir(p)
	var names []string
	for _, fi := range infos {
		names = append(names, fi.Name())
	}
	return names, err
}

// refused is what a client shows for an operation the user may not do.
func refused(err error) bool { return errors.Is(err, os.ErrPermission) }

func mustWrite(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

// layout empties a folder on disk and puts f.txt and sub/ in it.
func layout(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(dir, "f.txt"), "data")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
}

// tree records every entry under dir with its size and modification time.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fi.Mode().String() + " " + fi.ModTime().String() + " " + strconv.FormatInt(fi.Size(), 10)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every preset against every SFTP operation, through a real client: what
// the preset grants works, everything else is refused and changes nothing.
func TestPresetMatrixOverSFTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f := w.folder(w.owner, "Plans")
	dir := w.disk(f)
	p := mount + "/Plans"

	type op struct {
		name string
		do   func(c *sftp.Client) error
	}
	ops := []op{
		{"ls", func(c *sftp.Client) error { _, err := c.ReadDir(p); return err }},
		{"stat", func(c *sftp.Client) error { _, err := c.Stat(p + "/f.txt"); return err }},
		{"get", func(c *sftp.Client) error {
			got, err := get(c, p+"/f.txt")
			if err == nil && got != "data" {
				return errors.New("read " + got)
			}
			return err
		}},
		{"put new", func(c *sftp.Client) error { return put(c, p+"/new.txt", "new") }},
		{"put over", func(c *sftp.Client) error { return put(c, p+"/f.txt", "over") }},
		{"touch", func(c *sftp.Client) error { return c.Chtimes(p+"/f.txt", time.Unix(1, 0), time.Unix(1, 0)) }},
		{"mkdir", func(c *sftp.Client) error { return c.Mkdir(p + "/newdir") }},
		{"rm", func(c *sftp.Client) error { return c.Remove(p + "/f.txt") }},
		{"rmdir", func(c *sftp.Client) error { return c.RemoveDirectory(p + "/sub") }},
		{"rename", func(c *sftp.Client) error { return c.Rename(p+"/f.txt", p+"/g.txt") }},
	}
	all := []string{"ls", "stat", "get", "put new", "put over", "touch", "mkdir", "rm", "rmdir", "rename"}
	allowed := map[policy.Preset][]string{
		policy.PresetList:  {"ls", "stat"},
		policy.PresetRead:  {"ls", "stat", "get"},
		policy.PresetWrite: all,
		policy.PresetShare: all,
		policy.PresetOwner: all,
	}
	for _, preset := range policy.Presets() {
		u := w.user("User "+string(preset), tenant.RoleUser)
		w.share(w.owner, f, u, preset)
		c := w.connect(u)
		for _, op := range ops {
			layout(t, dir)
			before := tree(t, dir)
			err := op.do(c)
			if slices.Contains(allowed[preset], op.name) {
				if err != nil {
					t.Errorf("%s: %s: %v; want it to work", preset, op.name, err)
				}
				continue
			}
			if !refused(err) {
				t.Errorf("%s: %s: %v; want permission denied", preset, op.name, err)
			}
			if after := tree(t, dir); !mapsEqual(before, after) {
				t.Errorf("%s: %s was refused but changed the folder", preset, op.name)
			}
		}
		// The mount point is read-only for everyone, whatever their preset.
		if err := put(c, mount+"/x.txt", "x"); !refused(err) {
			t.Errorf("%s: put into the mount point: %v", preset, err)
		}
		if err := c.Mkdir(mount + "/New"); !refused(err) {
			t.Errorf("%s: mkdir in the mount point: %v", preset, err)
		}
		if err := c.RemoveDirectory(p); !refused(err) {
			t.Errorf("%s: rmdir of the shared folder: %v", preset, err)
		}
		if err := c.Rename(p, mount+"/Other"); !refused(err) {
			t.Errorf("%s: rename of the shared folder: %v", preset, err)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The "done when": an admin jails a user and shares a folder with
// them as READ; the user's session shows only that folder and can download
// but not upload.
func TestJailedUserGetsOnlyAReadOnlyFolder(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	jill := w.user("Jill Jailed", tenant.RoleUser)
	w.setGroup(jill, w.builtin(sharing.GroupJailed))
	f := w.folder(w.owner, "Deliverables")
	mustWrite(t, filepath.Join(w.disk(f), "report.pdf"), "the report")
	// Another folder exists but is not shared with Jill.
	w.folder(w.owner, "Internal")
	w.share(w.owner, f, jill, policy.PresetRead)

	if l := w.login(jill); !l.Jailed {
		t.Fatal("the directory does not jail a member of Jailed Users")
	}
	c := w.connect(jill)
	if wd, err := c.Getwd(); err != nil || wd != mount {
		t.Errorf("start directory = %q, %v; want %s", wd, err, mount)
	}
	if got, err := ls(c, "/"); err != nil || !slices.Equal(got, []string{vfs.SharedMount}) {
		t.Errorf("ls / = %q, %v", got, err)
	}
	if got, err := ls(c, mount); err != nil || !slices.Equal(got, []string{"Deliverables"}) {
		t.Errorf("ls %s = %q, %v", mount, got, err)
	}
	if got, err := get(c, mount+"/Deliverables/report.pdf"); err != nil || got != "the report" {
		t.Errorf("download = %q, %v", got, err)
	}
	if err := put(c, mount+"/Deliverables/mine.txt", "x"); !refused(err) {
		t.Errorf("upload: %v; want permission denied", err)
	}
}

// A jailed user cannot reach My Files, theirs or anyone's, by any path,
// even with files left in their home from before they were jailed.
func TestJailedUserCannotReachMyFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	jill := w.user("Jill Jailed", tenant.RoleUser)
	f := w.folder(w.owner, "Shared")
	w.share(w.owner, f, jill, policy.PresetOwner)
	w.setGroup(jill, w.builtin(sharing.GroupJailed))
	home := w.home(jill)
	mustWrite(t, filepath.Join(home, "secret.txt"), "SECRET")
	ownerHome := w.home(w.owner)
	mustWrite(t, filepath.Join(ownerHome, "secret.txt"), "SECRET")
	folder := w.disk(f)
	// Links planted on disk inside the shared folder, pointing at the homes.
	for name, target := range map[string]string{
		"home-abs": home, "home-rel": filepath.Join("..", "..", "users", jill.ID), "owner-abs": ownerHome,
	} {
		if err := os.Symlink(target, filepath.Join(folder, name)); err != nil {
			t.Fatal(err)
		}
	}
	homes := func() map[string]string {
		m := tree(t, home)
		for k, v := range tree(t, ownerHome) {
			m[k] = v
		}
		return m
	}
	before := homes()
	c := w.connect(jill)
	shared := mount + "/Shared"
	paths := []string{
		"/My Files", "/My Files/", "/My Files/secret.txt", "My Files/secret.txt", "./My Files/secret.txt",
		"../My Files/secret.txt", "/../My Files/secret.txt", mount + "/../My Files/secret.txt",
		shared + "/../../My Files/secret.txt", "/./My Files/./secret.txt", "//My Files//secret.txt",
		`..\My Files\secret.txt`, `\My Files\secret.txt`, "/my files/secret.txt", "/MY FILES/secret.txt",
		"/My%20Files/secret.txt", "/My Files\x00/secret.txt", "/My Files/../My Files/secret.txt",
		"/" + w.account.ID + "/users/" + jill.ID + "/secret.txt",
		home + "/secret.txt", filepath.Join(w.base, w.account.ID, "users") + "/" + w.owner.ID + "/secret.txt",
		shared + "/home-abs/secret.txt", shared + "/home-rel/secret.txt", shared + "/owner-abs/secret.txt",
		shared + "/../../../" + w.account.ID + "/users/" + jill.ID + "/secret.txt",
	}
	for _, p := range paths {
		if got, err := get(c, p); err == nil || strings.Contains(got, "SECRET") {
			t.Errorf("get %q = %q, %v", p, got, err)
		}
		if names, err := ls(c, p); err == nil && (slices.Contains(names, "secret.txt") || slices.Contains(names, vfs.MyFiles)) {
			t.Errorf("ls %q = %q", p, names)
		}
		if _, err := c.Stat(p); err == nil {
			if real, _ := c.RealPath(p); real != "/" && real != mount && real != shared && !strings.HasPrefix(real, shared+"/") {
				t.Errorf("stat %q works (%s)", p, real)
			}
		}
		put(c, p, "PWNED")
		c.Mkdir(p)
		c.Rename(shared+"/home-abs", p)
		c.PosixRename(p, shared+"/stolen")
		c.Remove(p)
	}
	if after := homes(); !mapsEqual(before, after) {
		t.Error("a jailed user's session changed a home")
	}
	if _, err := os.Lstat(filepath.Join(folder, "stolen")); err == nil {
		t.Error("a file was moved out of a home into the shared folder")
	}
	if got, err := ls(c, "/"); err != nil || !slices.Equal(got, []string{vfs.SharedMount}) {
		t.Errorf("ls / = %q, %v", got, err)
	}
}

// A preset change, an unshare and a deleted folder reach an open session on
// its next operation once its cache expires.
func TestChangesReachOpenSessions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann := w.user("Ann", tenant.RoleUser)
	f := w.folder(w.owner, "Plans")
	mustWrite(t, filepath.Join(w.disk(f), "f.txt"), "data")
	w.share(w.owner, f, ann, policy.PresetWrite)
	c := w.connect(ann)
	p := mount + "/Plans"
	if err := put(c, p+"/a.txt", "a"); err != nil {
		t.Fatalf("upload with WRITE: %v", err)
	}

	w.share(w.owner, f, ann, policy.PresetRead)
	w.clock.Advance()
	if err := put(c, p+"/b.txt", "b"); !refused(err) {
		t.Errorf("upload after the share became READ: %v", err)
	}
	if got, err := get(c, p+"/f.txt"); err != nil || got != "data" {
		t.Errorf("download with READ = %q, %v", got, err)
	}

	// Shared with Ann's group as WRITE too: the union applies.
	if _, err := w.svc.Sharing.ShareProjectFolder(w.as(w.owner), sharing.ShareInput{FolderID: f.ID, GroupID: w.builtin(sharing.GroupPro).ID, Preset: policy.PresetWrite}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance()
	if err := put(c, p+"/c.txt", "c"); err != nil {
		t.Errorf("upload with WRITE through the group: %v", err)
	}
	if _, err := w.svc.Sharing.UnshareProjectFolder(w.as(w.owner), sharing.UnshareInput{FolderID: f.ID, GroupID: w.builtin(sharing.GroupPro).ID}); err != nil {
		t.Fatal(err)
	}

	if _, err := w.svc.Sharing.UnshareProjectFolder(w.as(w.owner), sharing.UnshareInput{FolderID: f.ID, UserID: ann.ID}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance()
	if got, err := ls(c, mount); err != nil || len(got) != 0 {
		t.Errorf("ls %s after the unshare = %q, %v", mount, got, err)
	}
	if _, err := get(c, p+"/f.txt"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("download after the unshare: %v; want no such file", err)
	}

	// A deleted folder disappears for everyone, its owner included.
	oc := w.connect(w.owner)
	if got, err := ls(oc, mount); err != nil || !slices.Equal(got, []string{"Plans"}) {
		t.Fatalf("owner's ls %s = %q, %v", mount, got, err)
	}
	if _, err := w.svc.Sharing.DeleteProjectFolder(w.as(w.owner), f.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance()
	if got, err := ls(oc, mount); err != nil || len(got) != 0 {
		t.Errorf("owner's ls %s after deleting = %q, %v", mount, got, err)
	}
}

// Jailing or freeing a user ends their sessions (on this node), so they
// reconnect to the tree their group now gives; other moves do not.
func TestJailChangesEndSessions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann := w.user("Ann", tenant.RoleUser)
	w.ended.take()
	w.setGroup(ann, w.builtin(sharing.GroupAssociate))
	if got := w.ended.take(); len(got) != 0 {
		t.Errorf("moving between unjailed groups ended sessions of %v", got)
	}
	w.setGroup(ann, w.builtin(sharing.GroupJailed))
	if got := w.ended.take(); !slices.Equal(got, []string{ann.ID}) {
		t.Errorf("jailing ended sessions of %v, want %s", got, ann.ID)
	}
	if !w.login(ann).Jailed {
		t.Error("a new login is not jailed")
	}
	// Taking My Files from a whole group ends its members' sessions.
	assoc := w.builtin(sharing.GroupAssociate)
	w.setGroup(ann, assoc)
	w.ended.take()
	none := []policy.Permission{}
	if _, err := w.svc.Sharing.UpdateGroup(w.as(w.owner), sharing.UpdateGroupInput{ID: assoc.ID, Permissions: &none}); err != nil {
		t.Fatal(err)
	}
	if got := w.ended.take(); !slices.Equal(got, []string{ann.ID}) {
		t.Errorf("removing My Files from the group ended sessions of %v, want %s", got, ann.ID)
	}
	if !w.login(ann).Jailed {
		t.Error("a member of a group without My Files is not jailed")
	}
}

// A jail change ends open sessions on every node, not only where it was
// made: the session gate compares the user's jail with the session's. Here
// the service's Disconnect only records (w.ended), as on a node that does
// not hold the session.
func TestJailChangesEndSessionsOnEveryNode(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann := w.user("Ann", tenant.RoleUser)
	w.share(w.owner, w.folder(w.owner, "Plans"), ann, policy.PresetRead)
	ctx := context.Background()

	c := w.connect(ann)
	if err := put(c, vfs.MyFilesPath+"/a.txt", "a"); err != nil {
		t.Fatalf("upload before the jail: %v", err)
	}
	w.setGroup(ann, w.builtin(sharing.GroupJailed))
	w.clock.Advance()
	if err := put(c, vfs.MyFilesPath+"/b.txt", "b"); !refused(err) {
		t.Errorf("upload to My Files after the user was jailed: %v; want permission denied", err)
	}
	if _, err := ls(c, mount); err == nil {
		t.Error("the session went on after the user was jailed")
	}
	if _, err := os.Lstat(filepath.Join(w.home(ann), "b.txt")); err == nil {
		t.Error("the upload after the jail reached My Files")
	}
	if err := w.dir.SessionAllowed(ctx, w.account.ID, ann.ID, true); err != nil {
		t.Errorf("a jailed session of a jailed user: %v", err)
	}

	// A session opened in the jail ends when the user is freed, so they
	// reconnect to a tree with My Files.
	jc := w.connect(ann)
	if got, err := ls(jc, "/"); err != nil || !slices.Equal(got, []string{vfs.SharedMount}) {
		t.Fatalf("jailed ls / = %q, %v", got, err)
	}
	w.setGroup(ann, w.builtin(sharing.GroupPro))
	w.clock.Advance()
	if _, err := ls(jc, mount); !refused(err) {
		t.Errorf("jailed session after the user was freed: %v; want permission denied", err)
	}
	if got, err := ls(w.connect(ann), "/"); err != nil || !slices.Equal(got, []string{vfs.MyFiles, vfs.SharedMount}) {
		t.Errorf("ls / after reconnecting = %q, %v", got, err)
	}
	// Other group changes leave sessions alone.
	oc := w.connect(ann)
	w.setGroup(ann, w.builtin(sharing.GroupAssociate))
	w.clock.Advance()
	if got, err := ls(oc, vfs.MyFilesPath); err != nil || !slices.Equal(got, []string{"a.txt"}) {
		t.Errorf("ls /My Files after moving to Associate = %q, %v", got, err)
	}
}

// Folders of the same name show the creator's name, so users see whose is whose.
func TestSameNamedFoldersShowTheirCreator(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann, bob, cat := w.user("Ann", tenant.RoleUser), w.user("Bob", tenant.RoleUser), w.user("Cat", tenant.RoleUser)
	fa, fb := w.folder(ann, "Plans"), w.folder(bob, "Plans")
	w.share(ann, fa, cat, policy.PresetRead)
	w.share(bob, fb, cat, policy.PresetRead)
	mustWrite(t, filepath.Join(w.disk(fa), "who.txt"), "ann")
	c := w.connect(cat)
	got, err := ls(c, mount)
	if want := []string{"Plans (Ann)", "Plans (Bob)"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("ls = %q, %v; want %q", got, err, want)
	}
	if got, err := get(c, mount+"/Plans (Ann)/who.txt"); err != nil || got != "ann" {
		t.Errorf("Ann's folder holds %q, %v", got, err)
	}
	// Ann sees her own folder under its plain name.
	if got, err := ls(w.connect(ann), mount); err != nil || !slices.Equal(got, []string{"Plans"}) {
		t.Errorf("Ann's ls = %q, %v", got, err)
	}
}

// A project folder is in its creator's /My Files/ as well as in the shared
// mount, under the same name; others it is shared with, as OWNER too, find
// it in the shared mount only; a creator who is jailed has no My Files.
func TestOwnFoldersInMyFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann, bob := w.user("Ann", tenant.RoleUser), w.user("Bob", tenant.RoleUser)
	plans := w.folder(w.owner, "Plans")
	w.share(w.owner, plans, ann, policy.PresetOwner)
	// Bob's folder of the same name, shared with the owner, shows Bob's name.
	w.share(bob, w.folder(bob, "Plans"), w.owner, policy.PresetRead)
	mustWrite(t, filepath.Join(w.home(w.owner), "notes.txt"), "notes")

	oc := w.connect(w.owner)
	if got, err := ls(oc, vfs.MyFilesPath); err != nil || !slices.Equal(got, []string{"Plans", "notes.txt"}) {
		t.Errorf("owner's ls /My Files = %q, %v", got, err)
	}
	if got, err := ls(oc, mount); err != nil || !slices.Equal(got, []string{"Plans", "Plans (Bob)"}) {
		t.Errorf("owner's ls %s = %q, %v", mount, got, err)
	}
	if err := put(oc, vfs.MyFilesPath+"/Plans/brief.txt", "brief"); err != nil {
		t.Fatalf("owner's upload through My Files: %v", err)
	}
	if err := oc.RemoveDirectory(vfs.MyFilesPath + "/Plans"); !refused(err) {
		t.Errorf("owner's rmdir of the folder in My Files: %v; want permission denied", err)
	}

	ac := w.connect(ann)
	if got, err := get(ac, mount+"/Plans/brief.txt"); err != nil || got != "brief" {
		t.Errorf("Ann's download = %q, %v", got, err)
	}
	if got, err := ls(ac, vfs.MyFilesPath); err != nil || len(got) != 0 {
		t.Errorf("Ann's ls /My Files = %q, %v; the folder is not hers", got, err)
	}

	// Bob, jailed, finds his folder in the shared mount only.
	w.setGroup(bob, w.builtin(sharing.GroupJailed))
	bc := w.connect(bob)
	if got, err := ls(bc, "/"); err != nil || !slices.Equal(got, []string{vfs.SharedMount}) {
		t.Errorf("jailed Bob's ls / = %q, %v", got, err)
	}
	if got, err := ls(bc, mount); err != nil || !slices.Equal(got, []string{"Plans"}) {
		t.Errorf("jailed Bob's ls %s = %q, %v", mount, got, err)
	}
	if _, err := bc.Stat(vfs.MyFilesPath + "/Plans"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("jailed Bob's stat of /My Files/Plans: %v; want no such file", err)
	}
}

// Two Skiff nodes on one database, each with its own listening enforcer: a
// share made through one reaches an SFTP session's folders on the other by
// notification (their MaxAge is far too long to explain it).
func TestSharesReachOtherNodes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann := w.user("Ann", tenant.RoleUser)
	f := w.folder(w.owner, "Plans")
	node1, node2 := w.node(), w.node()
	w.svc.Sharing.Policy = node1
	db2, err := tenant.Open(context.Background(), w.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	svc2 := domain.New(db2)
	svc2.Sharing.Policy = node2
	shares := skiffsftp.SessionShares(svc2.Sharing, w.account.ID, ann.ID)
	folders := func() []vfs.SharedFolder {
		got, err := shares.SharedFolders(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := folders(); len(got) != 0 {
		t.Fatalf("before sharing, node 2 shows %v", got)
	}
	w.share(w.owner, f, ann, policy.PresetRead)
	testkit.Eventually(t, "node 2 to show the shared folder", func() bool {
		got := folders()
		return len(got) == 1 && got[0].Name == "Plans" && got[0].Rights == vfs.List|vfs.Download
	})
	w.setGroup(ann, w.builtin(sharing.GroupJailed))
	testkit.Eventually(t, "node 2 to jail Ann", func() bool {
		jailed, err := svc2.Sharing.SFTPJailed(context.Background(), w.account.ID, ann.ID)
		return err == nil && jailed
	})
	if _, err := w.svc.Sharing.UnshareProjectFolder(w.as(w.owner), sharing.UnshareInput{FolderID: f.ID, UserID: ann.ID}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "node 2 to drop the folder", func() bool { return len(folders()) == 0 })
}

// node is one node's enforcer, listening until the test ends.
func (w *world) node() *policy.Enforcer {
	w.t.Helper()
	db, err := tenant.Open(context.Background(), w.url)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { db.Close() })
	e, err := policy.New(db, policy.Options{MaxAge: time.Hour, ListeningMaxAge: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Listen(ctx, w.url) }()
	w.t.Cleanup(func() { cancel(); <-done })
	testkit.Eventually(w.t, "the enforcer to listen", e.Listening)
	return e
}
