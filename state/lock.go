package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// LockDaemon takes the daemon lock of the database: an exclusive,
// non-blocking flock on "<dbpath>.lock" (mode 0600). Only the daemon takes
// it, so that two daemons never run the same routes twice; CLI commands
// run beside a daemon without it.
//
// If another process, or another Store in this process, holds the lock,
// LockDaemon returns an error wrapping ErrLocked that names the lock file.
// The returned release drops the lock; calling it again does nothing. The
// operating system drops the lock if the process dies, so a crash never
// leaves a stale lock behind. The lock file itself is kept: deleting it
// would let a new daemon lock a fresh file while an old one still holds the
// unlinked one.
//
// On PostgreSQL there is no such lock: any number of daemons share the
// database and divide the routes by leases (lease.go), so LockDaemon
// returns a release that does nothing.
//
// A lock held by another process is tried again for up to lockPatience:
// `ferry status` takes it for an instant to see whether a daemon runs
// (DaemonRunning), and a daemon starting at that instant must not take
// the probe for a daemon.
func (s *Store) LockDaemon() (release func() error, err error) {
	deadline := time.Now().Add(lockPatience)
	for {
		release, err = s.lockDaemon()
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return release, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockPatience is how long LockDaemon tries a lock another process holds.
const lockPatience = 2 * time.Second

// DaemonRunning reports whether a ferry daemon holds the daemon lock of
// the database, by taking it for an instant; always false on PostgreSQL
// (see its leases instead).
func (s *Store) DaemonRunning() (bool, error) {
	release, err := s.lockDaemon()
	if errors.Is(err, ErrLocked) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, release()
}

func (s *Store) lockDaemon() (release func() error, err error) {
	if s.pg {
		return func() error { return nil }, nil
	}
	name := s.path + ".lock"
	f, err := lockFile(name)
	if isWouldBlock(err) {
		holder := ""
		if b, rerr := os.ReadFile(name); rerr == nil {
			if pid, perr := strconv.Atoi(string(bytes.TrimSpace(b))); perr == nil {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		return nil, fmt.Errorf("daemon lock %s is held by another ferry daemon%s: %w", name, holder, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("daemon lock %s: %w", name, err)
	}
	// The pid is only a hint for the error message above; the flock is
	// the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	var once sync.Once
	var cerr error
	release = func() error {
		// Closing the descriptor releases the flock.
		once.Do(func() { cerr = f.Close() })
		return cerr
	}
	return release, nil
}

// lockFile opens the file at path (created with mode 0600, an existing
// one set to it) and takes its flock without waiting; an error for which
// isWouldBlock holds means another descriptor has it. Closing the file
// releases the lock.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
