//go:build !linux

package pgtest

// ramDir is Linux only.
func ramDir() string { return "" }
