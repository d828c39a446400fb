package inspect

import (
	"bytes"
	"context"
	"errors"
	"os/exec"

	"github.com/vishvananda/netlink"

	"github.com/meshtrace/meshtrace/internal/kmod"
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

// netlinkIPVSProbe is kmod.IPVS in the caller's namespace: the gate, then
// the generic netlink family "IPVS", which is what ipvsadm talks to (and
// whose lookup, like ipvsadm's own modprobe, loads a missing ip_vs).
type netlinkIPVSProbe struct{ mods kmod.Gate }

var _ IPVSProbe = netlinkIPVSProbe{}

func (p netlinkIPVSProbe) KernelIPVS() (bool, string) {
	if p.mods == nil {
		p.mods = kmod.Host()
	}
	ok, reason, err := kmod.IPVS(p.mods, func() (bool, error) { return kmod.IPVSFamily(netlink.GenlFamilyGet) })
	if err != nil {
		return false, "generic netlink family IPVS: " + err.Error()
	}
	// The reason is the live reader's, so a bundle reads back to the
	// live answer.
	return ok, reason
}
