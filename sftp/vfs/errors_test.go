package vfs

import (
	"fmt"
	"io/fs"
	"testing"

	"github.com/skiffhq/skiff/storage"
)

// What a storage backend cannot do reaches the client as
// SSH_FX_OP_UNSUPPORTED, with the backend's reason where it gave one, and
// is not logged as a failure of the server.
func TestFSErrorUnsupported(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{storage.Unsupported("write", "random writes are not supported on this storage"), "random writes are not supported on this storage"},
		{&fs.PathError{Op: "write", Path: "a", Err: storage.Unsupported("write", "only at the end")}, "only at the end"},
		{fmt.Errorf("rename: %w", storage.ErrUnsupported), msgUnsupported},
	} {
		st, expected := fsError(tc.err)
		se, ok := st.(*statusError)
		if !ok || se.code != fxOpUnsupported || se.msg != tc.want || !expected {
			t.Errorf("fsError(%v) = %#v, %v; want OP_UNSUPPORTED %q, expected", tc.err, st, expected, tc.want)
		}
	}
}

// A backend with no memory free for an upload says so, and the client is
// told to try again later; it is not logged as a failure of the server.
// A store that does not answer is a failure that says to try again later,
// and is logged (not expected).
func TestFSErrorUnavailable(t *testing.T) {
	err := &fs.PathError{Op: "write", Path: "a", Err: fmt.Errorf("upload part: %w", storage.ErrUnavailable)}
	st, expected := fsError(err)
	se, ok := st.(*statusError)
	if !ok || se.code != fxFailure || se.msg != "the storage is not answering now: try again later" || expected {
		t.Errorf("fsError(%v) = %#v, %v; want FAILURE with the reason, not expected", err, st, expected)
	}
}

func TestFSErrorBusy(t *testing.T) {
	err := &fs.PathError{Op: "write", Path: "a", Err: storage.ErrBusy}
	st, expected := fsError(err)
	se, ok := st.(*statusError)
	if !ok || se.code != fxFailure || se.msg != "the server has no memory free for this transfer now: try again later" || !expected {
		t.Errorf("fsError(%v) = %#v, %v; want FAILURE with the reason, expected", err, st, expected)
	}
}
