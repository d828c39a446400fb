//go:build !linux

package inspect

import (
	"errors"

	"github.com/meshtrace/meshtrace/topology"
)

type targetRes struct{}

func (t *Target) close() {}

var errNotLinux = errors.New("live inspection needs Linux")

type unsupported struct{}

func (unsupported) ReadLinks(*Target) (*LinkData, error)            { return nil, errNotLinux }
func (unsupported) NetnsID(NetnsRef, NetnsRef) (int, error)         { return -1, errNotLinux }
func (unsupported) ReadNetlink(*Target) (*topology.Firewall, error) { return nil, errNotLinux }
func (unsupported) ReadExec(*Target, string) (*topology.Firewall, error) {
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
