//go:build unix && !linux

package testenv

import "syscall"

// sysProcAttr puts a child into its own process group, so that Stop can signal everything
// it spawned. (There is no parent-death signal outside Linux.)
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
