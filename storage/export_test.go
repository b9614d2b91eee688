package storage

import "os"

// MoveByLink is Move without replacing, through the portable fallback
// (link and unlink) that Linux and macOS use only where the file system
// lacks an atomic no-replace rename, so that tests exercise it everywhere.
func MoveByLink(srcRoot *os.Root, src string, dstRoot *os.Root, dst string) error {
	return move(srcRoot, src, dstRoot, dst, renameByLink)
}
