//go:build linux

package testenv

import "syscall"

// sysProcAttr puts a child into its own process group, so that Stop can signal everything
// it spawned, and asks the kernel to SIGKILL it when the test binary dies (so a crashed or
// killed test run does not leave servers behind).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
