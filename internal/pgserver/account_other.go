//go:build !unix

package pgserver

import "syscall"

// account is Unix only: elsewhere PostgreSQL runs as this process's user.
type account struct{}

func serverAccount(string) (*account, error)    { return nil, nil }
func (*account) procAttr() *syscall.SysProcAttr { return nil }
func (*account) own(string) error               { return nil }
func (*account) checkReachable(string) error    { return nil }
