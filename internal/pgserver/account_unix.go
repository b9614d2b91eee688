//go:build unix

package pgserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// account is the unprivileged OS user PostgreSQL runs as when this process
// is root: PostgreSQL refuses to run as root.
type account struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
}

// serverAccount picks who runs PostgreSQL for dataDir; nil means this
// process's own user. As root, an existing data directory keeps its owner;
// a new one goes to "postgres", or "nobody" where there is no such user.
func serverAccount(dataDir string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if fi, err := os.Stat(dataDir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10))
			if err != nil {
				// The owner has no passwd entry; its numeric ids still work.
				return &account{name: strconv.FormatUint(uint64(st.Uid), 10), uid: st.Uid, gid: st.Gid, groups: []uint32{st.Gid}}, nil
			}
			return accountOf(u)
		}
	}
	for _, name := range []string{"postgres", "nobody"} {
		if u, err := user.Lookup(name); err == nil {
			return accountOf(u)
		}
	}
	return nil, errors.New("running as root, and there is no postgres or nobody user to run PostgreSQL as: " +
		"create one (useradd --system postgres) or run as an ordinary user")
}

func accountOf(u *user.User) (*account, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	a := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}}
	ids, _ := u.GroupIds() // without supplementary groups the primary group is enough
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(a.groups, uint32(g)) {
			a.groups = append(a.groups, uint32(g))
		}
	}
	return a, nil
}

// procAttr runs a child as a in its own process group, so a Ctrl-C meant for
// Skiff does not stop PostgreSQL before Skiff has closed its connections.
func (a *account) procAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if a != nil {
		attr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
	}
	setParentDeathSignal(attr)
	return attr
}

// own hands path to a (no-op when a is nil).
func (a *account) own(path string) error {
	if a == nil {
		return nil
	}
	if err := os.Lchown(path, int(a.uid), int(a.gid)); err != nil {
		return fmt.Errorf("give %s to user %s: %w", path, a.name, err)
	}
	return nil
}

// checkReachable fails if a cannot walk down to dir: PostgreSQL would then
// fail later with a less helpful "permission denied". This is the usual trap
// when root keeps data under /root or another 0700 folder.
func (a *account) checkReachable(dir string) error {
	if a == nil {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// Missing folders are created reachable.
		if err == nil && !a.canSearch(fi) {
			return fmt.Errorf("PostgreSQL runs as user %s (it refuses to run as root), who cannot reach %s: "+
				"%s has mode %04o; choose a data directory that user can reach, or allow it with chmod o+x %s",
				a.name, dir, p, uint32(fi.Mode().Perm()), p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (a *account) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&0o100 != 0
	case slices.Contains(a.groups, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
