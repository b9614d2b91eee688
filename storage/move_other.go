//go:build unix && !linux && !darwin

package storage

// renameNoReplace is renameByLink: golang.org/x/sys/unix offers no rename
// with a no-replace flag on FreeBSD and the other BSDs, and link(2) is the
// portable way to claim a name atomically.
func renameNoReplace(fromFD int, from string, toFD int, to string) error {
	return renameByLink(fromFD, from, toFD, to)
}
