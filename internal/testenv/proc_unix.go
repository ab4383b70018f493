//go:build unix

package testenv

import (
	"syscall"
)

// termGroup sends SIGTERM to the process group of p (the server runs in its own group).
func termGroup(p *process) { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM) }

// killGroup sends SIGKILL to the process group of p.
func killGroup(p *process) { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }

// killPID sends SIGKILL to the process group led by pid.
func killPID(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
