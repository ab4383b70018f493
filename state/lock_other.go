//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package state

import (
	"errors"
	"os"
)

func isWouldBlock(error) bool { return false }

// flock is unsupported here; refusing is safer than pretending to lock.
func flock(*os.File) error {
	return errors.New("daemon lock is not supported on this platform")
}
