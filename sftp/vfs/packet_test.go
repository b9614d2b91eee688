package vfs

import (
	"encoding/binary"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// zeroTimeDir is a folder with no time of its own, as S3 describes the
// top of a tree or a prefix without a marker object.
type zeroTimeDir struct{}

func (zeroTimeDir) Name() string       { return ".." }
func (zeroTimeDir) Size() int64        { return 0 }
func (zeroTimeDir) Mode() fs.FileMode  { return fs.ModeDir | 0o750 }
func (zeroTimeDir) ModTime() time.Time { return time.Time{} }
func (zeroTimeDir) IsDir() bool        { return true }
func (zeroTimeDir) Sys() any           { return nil }

// A NAME entry's long name shows the time its attributes carry: for a
// folder with no time, 1970 in both (what clients print from the
// attributes), not year 1 in the line.
func TestLongNameShowsTheTimeTheAttributesCarry(t *testing.T) {
	fi := zeroTimeDir{}
	attrs := appendAttrs(nil, fi)
	if mtime := binary.BigEndian.Uint32(attrs[len(attrs)-4:]); mtime != 0 {
		t.Fatalf("attributes carry mtime %d, want 0", mtime)
	}
	b := appendLongname(nil, fi, time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC), "alice")
	line := string(b[4:])
	if !strings.Contains(line, "Jan  1  1970 ..") {
		t.Errorf("long name %q; want the attributes' time, Jan  1  1970", line)
	}
}
