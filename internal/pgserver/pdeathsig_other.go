//go:build unix && !linux

package pgserver

import "syscall"

// setParentDeathSignal is Linux only; elsewhere a server whose owner died
// keeps running until stopped.
func setParentDeathSignal(*syscall.SysProcAttr) {}
