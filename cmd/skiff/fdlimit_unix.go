//go:build unix

package main

import "syscall"

// raiseFileLimit raises the soft limit on open file descriptors to the hard
// limit and returns both as they then are. Go's start-up already raises it
// on most systems; macOS refuses an unlimited soft limit, so a refusal is
// not an error: the limit is read back and used as it stands.
func raiseFileLimit() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised)
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, 0, err
		}
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}
