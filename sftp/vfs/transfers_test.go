package vfs_test

import (
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
)

// A session with a file open is busy and lists it with the bytes moved so
// far; once the client has closed it and had its answer, the session is
// idle (a shutting-down server closes it then, see sftp.Server.Shutdown).
func TestTransfersAndBusy(t *testing.T) {
	e := newEnv(t)
	if e.session.Busy() {
		t.Fatal("a new session is busy")
	}
	f, err := e.client.Create("/My Files/report.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if !e.session.Busy() {
		t.Error("a session with an upload open is not busy")
	}
	tr := e.session.Transfers()
	if len(tr) != 1 || tr[0].Path != "/My Files/report.csv" || !tr[0].Upload || tr[0].Bytes != 10 {
		t.Errorf("transfers: %+v", tr)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the session to be idle", func() bool { return !e.session.Busy() })
	if tr := e.session.Transfers(); len(tr) != 0 {
		t.Errorf("transfers after close: %+v", tr)
	}
}
