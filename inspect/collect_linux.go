package inspect

import (
	"bytes"
	"context"
	"errors"
	"golang.org/x/sys/unix"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// execRunner runs commands inside namespaces through netnsx.
type execRunner struct{}

var _ CommandRunner = execRunner{}

func (execRunner) Run(ctx context.Context, netnsPath, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := netnsx.Output(netnsPath, cmd)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, &CommandError{Err: err, Stderr: stderr.Bytes()}
		}
		return nil, err
	}
	return out, nil
}

func (execRunner) LookPath(name string) error {
	_, err := exec.LookPath(name)
	return err
}

// netlinkIPVSProbe asks the kernel for the generic netlink family "IPVS",
// which is what ipvsadm talks to. (Asking may make the kernel load ip_vs
// when it is a module, as ipvsadm itself would.)
type netlinkIPVSProbe struct{}

var _ IPVSProbe = netlinkIPVSProbe{}

func (netlinkIPVSProbe) KernelIPVS() (bool, string) {
	_, err := netlink.GenlFamilyGet("IPVS")
	switch {
	case errors.Is(err, unix.ENOENT):
		// The same words as the live reader's, so a bundle reads back
		// to the live answer.
		return false, strings.TrimPrefix(NoIPVSReason, noIPVSPrefix)
	case err != nil:
		return false, "generic netlink family IPVS: " + err.Error()
	}
	return true, ""
}
