package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLockDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	a, b := openAt(t, path), openAt(t, path)

	release, err := a.LockDaemon()
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path+".lock"); m != 0o600 {
		t.Errorf("lock file mode = %o, want 600", m)
	}
	// Another Store in this process is refused, and so is the same one.
	for _, s := range []*Store{b, a} {
		_, err := s.LockDaemon()
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path+".lock") {
			t.Fatalf("second LockDaemon: err = %v, want ErrLocked naming the lock file", err)
		}
	}
	// Another process is refused too.
	if code := runHelper(t, "lock", path, 0); code != helperLocked {
		t.Fatalf("helper process LockDaemon exit code = %d, want %d (ErrLocked)", code, helperLocked)
	}

	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	release2, err := b.LockDaemon()
	if err != nil {
		t.Fatalf("LockDaemon after release: %v", err)
	}
	if err := release2(); err != nil {
		t.Fatal(err)
	}
	if code := runHelper(t, "lock", path, 0); code != 0 {
		t.Fatalf("helper process LockDaemon after release: exit code %d", code)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("lock file should be kept: %v", err)
	}
}

// `ferry status` probes the lock by taking it for an instant; a daemon
// starting while probes run waits them out instead of taking a probe for
// a running daemon, and the probe sees a daemon that holds it.
func TestLockDaemonOutlastsProbes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	prober, daemon := openAt(t, path), openAt(t, path)
	// A probe holds the lock when the daemon starts, and lets go soon.
	probe, err := prober.lockDaemon()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = probe()
	}()
	release, err := daemon.LockDaemon()
	if err != nil {
		t.Fatalf("the daemon lost to a probe: %v", err)
	}
	defer release()
	if running, err := prober.DaemonRunning(); err != nil || !running {
		t.Errorf("DaemonRunning with the daemon up = %v, %v", running, err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if running, err := prober.DaemonRunning(); err != nil || running {
		t.Errorf("DaemonRunning after the daemon stopped = %v, %v", running, err)
	}
}
