package sftp

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
)

// A client that asks for the checksum of a huge file (check-file, served
// by reading the whole file) and then leaves does not keep the server
// hashing for nobody: the connection's end is logged within moments, not
// once the file has been read — minutes for the 64 GiB sparse file here,
// which any user without a quota can make with one WRITE far past the end.
func TestE2EChecksumStopsWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	if e.home == "" {
		t.Skip("a sparse file of many gigabytes needs a disk, not S3 storage")
	}
	big := filepath.Join(e.home, "big.bin")
	if err := os.WriteFile(big, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 64<<30); err != nil {
		t.Skipf("no sparse file here: %v", err)
	}
	n := e.startNode(t, nil, nil)
	c, _ := e.sftpClient(t, n.addr, e.login) // its first channel lists nothing
	ch, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, err := ch.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	send := func(typ byte, fields ...[]byte) {
		t.Helper()
		var b []byte
		for _, f := range fields {
			b = append(b, f...)
		}
		b = append(binary.BigEndian.AppendUint32(nil, uint32(1+len(b))), append([]byte{typ}, b...)...)
		if _, err := in.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	str := func(s string) []byte { return append(u32(uint32(len(s))), s...) }
	send(1, u32(3)) // INIT
	var hdr [5]byte
	if _, err := io.ReadFull(out, hdr[:]); err != nil || hdr[4] != 2 {
		t.Fatalf("no VERSION: %v %v", hdr, err)
	}
	if _, err := io.CopyN(io.Discard, out, int64(binary.BigEndian.Uint32(hdr[:4]))-1); err != nil {
		t.Fatal(err)
	}
	send(200, u32(1), str("check-file-name"), str("/My Files/big.bin"), str("md5"), u64(0), u64(0), u32(0))
	time.Sleep(300 * time.Millisecond) // the hashing has started
	c.Close()
	testkit.Eventually(t, "the node to log the connection's end", func() bool {
		return strings.Contains(n.logs.String(), "sftp connection closed")
	})
}
