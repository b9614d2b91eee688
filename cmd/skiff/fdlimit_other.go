//go:build !unix

package main

import "errors"

// raiseFileLimit cannot read the descriptor limit here: --sftp-max-handles
// must be given.
func raiseFileLimit() (soft, hard uint64, err error) {
	return 0, 0, errors.New("the open file limit cannot be read on this system")
}
