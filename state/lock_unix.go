//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package state

import (
	"errors"
	"os"
	"syscall"
)

// isWouldBlock reports whether flock failed because another descriptor
// holds the lock.
func isWouldBlock(err error) bool { return errors.Is(err, syscall.EWOULDBLOCK) }

// flock takes an exclusive lock without waiting. flock (not fcntl) is used
// because its locks belong to the open file description, so two Stores in
// one process exclude each other too, and closing an unrelated descriptor
// of the same file does not drop the lock.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
