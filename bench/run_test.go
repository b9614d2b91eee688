package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// -profile-dir may name a directory that does not exist yet, relative to
// the working directory: the servers, which write some of the profiles,
// get its absolute path.
func TestProfileDirIsMadeAndAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	dir, err := makeProfileDir(filepath.Join("profiles", "run1"))
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(dir) {
		t.Errorf("profile directory %q is not absolute", dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("profile directory not made: %v", err)
	}
	if _, err := makeProfileDir(filepath.Join(dir, "x", "\x00")); err == nil {
		t.Error("an impossible profile directory was accepted")
	}
}

func TestNegotiatedAlgorithms(t *testing.T) {
	log := "debug1: kex: algorithm: sntrup761x25519-sha512@openssh.com\n" +
		"debug1: kex: server->client cipher: aes128-ctr MAC: hmac-sha2-256-etm@openssh.com compression: none\n" +
		"debug1: kex: client->server cipher: aes128-ctr MAC: hmac-sha2-256-etm@openssh.com compression: none\n"
	if c, mac := negotiatedAlgorithms(log); c+", MAC "+mac != "aes128-ctr, MAC hmac-sha2-256-etm@openssh.com" {
		t.Errorf("got %q, %q", c, mac)
	}
	gcm := "debug1: kex: server->client cipher: aes128-gcm@openssh.com MAC: <implicit> compression: none\n"
	if c, mac := negotiatedAlgorithms(gcm); c+", MAC "+mac != "aes128-gcm@openssh.com, MAC <implicit>" {
		t.Errorf("got %q, %q", c, mac)
	}
	if c, mac := negotiatedAlgorithms("ssh: connect to host 127.0.0.1 port 1: Connection refused\n"); c != "" || mac != "" {
		t.Errorf("a log without the line gave %q, %q", c, mac)
	}
}
