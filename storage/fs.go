package storage

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// FS is a tree as a read-only fs.FS (with fs.ReadDirFS and fs.StatFS), for
// fs.WalkDir and the like. A tree that has its own (a LocalTree: os.Root's)
// gives that one.
func FS(t Tree) fs.FS {
	if f, ok := t.(interface{ FS() fs.FS }); ok {
		return f.FS()
	}
	return treeFS{t}
}

type treeFS struct{ t Tree }

func (f treeFS) check(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

func (f treeFS) Open(name string) (fs.File, error) {
	if err := f.check("open", name); err != nil {
		return nil, err
	}
	file, err := f.t.Open(name)
	if err != nil {
		return nil, err
	}
	return &fsFile{File: file}, nil
}

func (f treeFS) Stat(name string) (fs.FileInfo, error) {
	if err := f.check("stat", name); err != nil {
		return nil, err
	}
	return f.t.Stat(name)
}

// ReadDir lists a directory sorted by name, as fs.ReadDir.
func (f treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := f.check("readdir", name); err != nil {
		return nil, err
	}
	d, err := f.t.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := (&fsFile{File: d}).ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// fsFile is a File as an fs.File: Read reads on from the last Read.
type fsFile struct {
	File
	off int64
}

func (f *fsFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadDir implements fs.ReadDirFile.
func (f *fsFile) ReadDir(n int) ([]fs.DirEntry, error) {
	batch := n
	if n <= 0 {
		batch = 1000
	}
	var out []fs.DirEntry
	for {
		infos, err := f.Readdir(batch)
		for _, fi := range infos {
			out = append(out, fs.FileInfoToDirEntry(fi))
		}
		switch {
		case errors.Is(err, io.EOF):
			if n > 0 && len(out) == 0 {
				return nil, io.EOF
			}
			return out, nil
		case err != nil:
			return out, err
		case n > 0:
			return out, nil
		}
	}
}
