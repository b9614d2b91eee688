package vfs_test

import (
	"encoding/binary"
	"path/filepath"
	"testing"
)

// Raw-packet cases where Skiff answers as OpenSSH's sftp-server does
// (docs/SFTP-SERVER.md, "Like OpenSSH's sftp-server").

// Open flags of SFTP v3.
const (
	fxfRead, fxfWrite, fxfAppend = 0x1, 0x2, 0x4
	fxfCreat, fxfTrunc, fxfExcl  = 0x8, 0x10, 0x20
)

// write sends a WRITE of data at off and returns its status code.
func (r *raw) write(id uint32, h []byte, off uint64, data string) uint32 {
	r.t.Helper()
	r.send(packet(typeWrite, u32(id), str(string(h)), u64(off), str(data)))
	return r.status(id)
}

// closeHandle closes h and fails the test unless the server says OK.
func (r *raw) closeHandle(id uint32, h []byte) {
	r.t.Helper()
	r.send(packet(typeClose, u32(id), str(string(h))))
	if got := r.status(id); got != codeOK {
		r.t.Fatalf("close: status %d", got)
	}
}

// read reads n bytes at off: the data, or nil and the status code.
func (r *raw) read(id uint32, h []byte, off uint64, n uint32) ([]byte, uint32) {
	r.t.Helper()
	r.send(packet(typeRead, u32(id), str(string(h)), u64(off), u32(n)))
	typ, b := r.recv()
	switch typ {
	case typeData:
		return b[8:], codeOK
	case typeStatus:
		return nil, binary.BigEndian.Uint32(b[4:])
	}
	r.t.Fatalf("read: reply of type %d", typ)
	return nil, 0
}

// With APPEND every write goes to the end of the file, whatever offset the
// client sends (OpenSSH opens with O_APPEND): an existing file keeps its
// start, and so does a new file written at offset 0 twice.
func TestAppendWritesAtTheEnd(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "log.txt"), "HEAD-")
	r := newRawInit(t, e.session)

	for _, tc := range []struct {
		name   string
		pflags uint32
		want   string
	}{
		{"append to existing", fxfWrite | fxfAppend, "HEAD-TAIL"},
		{"append, create if missing", fxfWrite | fxfAppend | fxfCreat, "HEAD-TAILTAIL"},
		{"append, read too", fxfRead | fxfWrite | fxfAppend, "HEAD-TAILTAILTAIL"},
	} {
		h := r.open(1, "log.txt", tc.pflags)
		if got := r.write(2, h, 0, "TAIL"); got != codeOK {
			t.Fatalf("%s: write: status %d", tc.name, got)
		}
		r.closeHandle(3, h)
		if got := mustRead(t, filepath.Join(e.home(), "log.txt")); got != tc.want {
			t.Errorf("%s: file holds %q, want %q", tc.name, got, tc.want)
		}
	}

	// A new file (an atomic upload) opened to append.
	h := r.open(4, "new.txt", fxfWrite|fxfAppend|fxfCreat|fxfTrunc)
	for i, part := range []string{"one,", "two"} {
		if got := r.write(uint32(5+i), h, 0, part); got != codeOK {
			t.Fatalf("new file: write: status %d", got)
		}
	}
	r.closeHandle(7, h)
	if got := mustRead(t, filepath.Join(e.home(), "new.txt")); got != "one,two" {
		t.Errorf("new file holds %q, want %q", got, "one,two")
	}
}
