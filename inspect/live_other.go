//go:build !linux

package inspect

import (
	"context"
	"errors"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

type targetRes struct{}

func (t *Target) close() {}

var errNotLinux = errors.New("reading a node live needs Linux (network namespaces, netlink): collect a bundle on the node (`meshtrace collect DIR`) and read it with --from DIR")

// needLinux says a live read cannot run here.
func needLinux() error { return errNotLinux }

// execRunner and netlinkIPVSProbe stand in for collect's Linux ones, which
// Collect never reaches off Linux (needLinux).
type execRunner struct{}

func (execRunner) Run(context.Context, string, string, ...string) ([]byte, error) {
	return nil, errNotLinux
}

func (execRunner) LookPath(string) error { return errNotLinux }

type netlinkIPVSProbe struct{ mods kmod.Gate }

func (netlinkIPVSProbe) KernelIPVS() (bool, string) { return false, errNotLinux.Error() }

// ReadConntrack needs Linux.
func ReadConntrack(string, kmod.Gate) ([]topology.Conntrack, error) { return nil, errNotLinux }

type unsupported struct{}

func (unsupported) ReadLinks(*Target) (*LinkData, error)            { return nil, errNotLinux }
func (unsupported) NetnsID(NetnsRef, NetnsRef) (int, error)         { return -1, errNotLinux }
func (unsupported) ReadNetlink(*Target) (*topology.Firewall, error) { return nil, errNotLinux }
func (unsupported) ReadExec(*Target, topology.FirewallBackend) (*topology.Firewall, error) {
	return nil, errNotLinux
}
func (unsupported) ReadIPVS(*Target) (*topology.IPVS, error)            { return nil, errNotLinux }
func (unsupported) ReadConntrack(*Target) ([]topology.Conntrack, error) { return nil, errNotLinux }
func (unsupported) ReadSysctls(*Target) (topology.Sysctls, error)       { return nil, errNotLinux }
func (unsupported) ReadSockets(*Target) ([]topology.Socket, error)      { return nil, errNotLinux }

// kernelReaders on a system without Linux namespaces fail every read.
func kernelReaders() Readers {
	u := unsupported{}
	return Readers{Links: u, Firewall: u, IPVS: u, Conntrack: u, Sysctl: u, Sockets: u}
}

// Discover needs Linux's namespace files.
func Discover(string, []string) ([]NetnsRef, error) { return nil, errNotLinux }
