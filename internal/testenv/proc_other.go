//go:build !unix

package testenv

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func termGroup(p *process) { _ = p.cmd.Process.Kill() }

func killGroup(p *process) { _ = p.cmd.Process.Kill() }

func killPID(pid int) error {
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return proc.Kill()
}

// processAlive cannot tell on this platform; it answers true so nothing is removed.
func processAlive(int) bool { return true }
