package vfs

import (
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/skiffhq/skiff/storage"
)

// place says which part of the tree a virtual path is in.
type place uint8

const (
	atRoot   place = iota // "/"
	atMount               // "/Projects Shared With Me"
	atHome                // "/My Files" and below, but for folders mounted there
	atFolder              // "/Projects Shared With Me/<name>" or a folder mounted in "/My Files", and below
)

// location is a resolved virtual path.
type location struct {
	vpath  string
	place  place
	root   storage.Tree // the tree, for atHome and atFolder
	rel    string       // path inside root; "." is the tree's top
	folder SharedFolder // for atFolder, with its display name and rights
	// dirOnly: the client's path ended in "/" or "/.", so it names a
	// directory or nothing (a file there is ENOTDIR, as in POSIX).
	dirOnly bool
}

// folderID is the project folder the location is in, "" outside one.
func (l *location) folderID() string {
	if l.place != atFolder {
		return ""
	}
	return l.folder.ID
}

// sameEntry reports whether l and o name one entry of one tree, by the same
// path or by two (a project folder is in My Files and in the mount point).
func (l *location) sameEntry(o *location) bool {
	return !l.virtual() && l.place == o.place && l.folderID() == o.folderID() && l.rel == o.rel
}

// virtual reports whether the location is one of the read-only directories
// that exist only in the tree ("/" and the mount point).
func (l *location) virtual() bool { return l.place == atRoot || l.place == atMount }

// top reports whether the location is the top of a tree: "/My Files" or a
// shared folder itself. They can be listed and entered but not removed,
// renamed or replaced.
func (l *location) top() bool { return !l.virtual() && l.rel == "." }

// entry reports whether the location is something inside a tree, which is
// all that can be created, removed or renamed.
func (l *location) entry() bool { return !l.virtual() && l.rel != "." }

// name is the location's base name as clients see it.
func (l *location) name() string {
	if l.vpath == "/" {
		return "/"
	}
	return l.vpath[strings.LastIndexByte(l.vpath, '/')+1:]
}

// need fails unless the user has every right in want here. Only shared
// folders restrict rights; callers refuse writes to virtual places themselves.
func (l *location) need(want Rights) error {
	if l.place == atFolder && !l.folder.Rights.Has(want) {
		return errDenied
	}
	return nil
}

// needAny fails unless the user has at least one right in want here.
func (l *location) needAny(want Rights) error {
	if l.place == atFolder && l.folder.Rights&want == 0 {
		return errDenied
	}
	return nil
}

// resolve cleans a client path and finds what it names. It checks the Gate
// first, so every operation that touches the tree is gated.
func (s *Session) resolve(ctx context.Context, p string) (*location, error) {
	if err := s.allow(ctx); err != nil {
		return nil, err
	}
	return s.locate(ctx, p)
}

// locate is resolve without the Gate check, for a request that has
// already made it (see statChecked): each request asks the Gate once.
func (s *Session) locate(ctx context.Context, p string) (*location, error) {
	if p == "" {
		return nil, errNotFound // as stat("") is ENOENT
	}
	vpath, err := s.cleanPath(p)
	if err != nil {
		return nil, pathError(err)
	}
	loc := &location{vpath: vpath, rel: "."}
	loc.dirOnly = vpath != "/" && (strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/."))
	if vpath == "/" {
		loc.place = atRoot
		return loc, nil
	}
	first, rest, _ := strings.Cut(vpath[1:], "/")
	switch first {
	case MyFiles:
		rest, err = s.inMyFiles(ctx, loc, rest)
	case SharedMount:
		rest, err = s.inSharedMount(ctx, loc, rest)
	default:
		err = errNotFound
	}
	if err != nil {
		return nil, err
	}
	if rest != "" {
		loc.rel = rest
	}
	if loc.dirOnly && loc.entry() {
		if fi, err := loc.root.Lstat(loc.rel); err == nil && !fi.IsDir() {
			return nil, errNotDir
		}
	}
	return loc, nil
}

// inMyFiles places loc in /My Files, at rest below it: in the home, or in a
// project folder mounted there. It returns the path left inside that tree.
func (s *Session) inMyFiles(ctx context.Context, loc *location, rest string) (string, error) {
	if s.cfg.Jailed {
		return "", errNotFound
	}
	root, err := s.homeRoot()
	if err != nil {
		return "", err
	}
	loc.place, loc.root = atHome, root
	if rest == "" {
		return "", nil
	}
	// A project folder the user made may be mounted here; the table
	// of mounts never names an entry of the home (see myFilesNames).
	name, inner, _ := strings.Cut(rest, "/")
	folder, ok, err := s.myFilesFolder(ctx, root, name)
	if err != nil || !ok {
		return rest, err
	}
	return inner, s.inFolder(loc, folder)
}

// inSharedMount places loc in /Projects Shared With Me, at rest below it:
// the mount point itself, or a folder shared with the user. It returns the
// path left inside the folder.
func (s *Session) inSharedMount(ctx context.Context, loc *location, rest string) (string, error) {
	if rest == "" {
		loc.place = atMount
		return "", nil
	}
	name, inner, _ := strings.Cut(rest, "/")
	folder, ok, err := s.shares.lookup(ctx, name)
	if err != nil {
		s.log.Warn("sftp: shared folders unavailable", "err", err)
		return "", errUnavailable
	}
	if !ok {
		return "", errNotFound
	}
	return inner, s.inFolder(loc, folder)
}

// inFolder places loc at the top of a shared folder.
func (s *Session) inFolder(loc *location, folder SharedFolder) error {
	root, err := s.folderRoot(folder.ID)
	if err != nil {
		return err
	}
	loc.place, loc.folder, loc.root = atFolder, folder, root
	return nil
}

// myFilesFolder finds the project folder mounted at /My Files/<name>, if
// any. While the shared folders cannot be read, names of the home are
// served as usual, and a name that was a folder's answers "temporarily
// unavailable", so that nothing goes to the home in its place.
func (s *Session) myFilesFolder(ctx context.Context, home storage.Tree, name string) (SharedFolder, bool, error) {
	own, err := s.shares.myFiles(ctx, inHome(home))
	folder, ok := findFolder(own, name)
	if err != nil {
		if !ok {
			return SharedFolder{}, false, nil
		}
		s.log.Warn("sftp: shared folders unavailable", "err", err)
		return SharedFolder{}, false, errUnavailable
	}
	return folder, ok, nil
}

// inHome reports whether the home has an entry of a name. One it cannot
// tell about counts as there: a folder never hides an entry.
func inHome(home storage.Tree) func(name string) bool {
	return func(name string) bool {
		_, err := home.Lstat(name)
		return !errors.Is(err, fs.ErrNotExist)
	}
}

// allow asks the (cached) Gate. A refusal ends the session.
func (s *Session) allow(ctx context.Context) error {
	err := s.gate.check(ctx)
	if err == nil {
		return nil
	}
	if s.deny(err) {
		s.log.Info("sftp: session ended by gate", "reason", err)
	}
	return errSessionEnded
}

// homeRoot opens the user's home on first use, so a jailed user never gets one.
func (s *Session) homeRoot() (storage.Tree, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.home != nil {
		return s.home, nil
	}
	if s.closed {
		return nil, errSessionEnded
	}
	root, err := s.cfg.Storage.UserHome(s.cfg.AccountID, s.cfg.UserID)
	if err != nil {
		s.log.Error("sftp: open home", "err", err)
		return nil, errInternal
	}
	s.home = s.sessionTree(root)
	return s.home, nil
}

// sessionTree is root as the session uses it: answering from the session's
// memo within a request, and giving up waits nobody can hear once the
// connection is lost (an upload waiting for memory on S3 would otherwise
// hold the session's end for up to the storage's memory_wait).
func (s *Session) sessionTree(root storage.Tree) storage.Tree {
	return storage.Unheard(storage.Remember(root, &s.memo), s.unheard.Done())
}

// folderRoot opens a shared folder's tree on first use; it stays open for
// the session (rights are checked on every use, not by closing it).
func (s *Session) folderRoot(id string) (storage.Tree, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.folders[id]; ok {
		return r, nil
	}
	if s.closed {
		return nil, errSessionEnded
	}
	root, err := s.cfg.Storage.ProjectFolder(s.cfg.AccountID, id)
	if err != nil {
		s.log.Error("sftp: open project folder", "folder", id, "err", err)
		return nil, errInternal
	}
	root = s.sessionTree(root)
	s.folders[id] = root
	return root, nil
}

// fail maps err to a status for the client, logging what is not the
// client's doing.
func (s *Session) fail(op string, loc *location, err error) error {
	return s.failPath(op, loc.vpath, err)
}

func (s *Session) failPath(op, vpath string, err error) error {
	st, expected := fsError(err)
	if !expected && !errors.Is(err, context.Canceled) {
		s.log.Error("sftp: "+op+" failed", "path", vpath, "err", err)
	}
	return st
}
