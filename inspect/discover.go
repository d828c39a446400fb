// Package inspect reads a Swarm node's packet plumbing into a
// topology.Model: live from the kernel (netlink, nf_tables or iptables-save,
// IPVS, conntrack, the Docker API) or from a bundle directory.
package inspect

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// DefaultHost is the namespace that plays "host" on a live node.
const DefaultHost = "/proc/1/ns/net"

// DefaultNetnsDirs are where Docker (and ip netns) keep namespace files.
var DefaultNetnsDirs = []string{"/run/docker/netns", "/run/netns"}

// NetnsRef names one namespace to read: its name ("host" or the file
// name) and the path it is entered by, and the inode of that nsfs file.
type NetnsRef struct {
	topology.NetnsRef
	Inode uint64
}

// netnsRef is a NetnsRef without an inode.
func netnsRef(name, path string) NetnsRef {
	return NetnsRef{NetnsRef: topology.NetnsRef{Name: name, Path: path}}
}

// SelfHost is what plays "host" where PID 1's namespace cannot be opened
// or PID 1 is meshtrace itself: the namespace meshtrace started in, by a
// path that means it whichever thread opens it (netnsx.InitialPath;
// /proc/self/ns/net would be the main thread's namespace of the moment),
// or /proc/self/ns/net where that could not be kept.
func SelfHost() string {
	if p := netnsx.InitialPath(); p != "" {
		return p
	}
	return "/proc/self/ns/net"
}

// HostPath is the default "host" namespace: PID 1's, or our own (SelfHost)
// where /proc/1 is hidden from us (a sandbox whose init is not ours to
// inspect, a container without CAP_SYS_PTRACE) or is meshtrace itself (a
// container without --pid host, such as swarm collect's job, where
// /proc/1/ns/net follows our main thread into whatever namespace it
// enters). Our own namespace is the node's root namespace whenever
// meshtrace runs from a shell on the node, or with --network host.
func HostPath() string {
	if os.Getpid() == 1 {
		return SelfHost()
	}
	if _, err := os.Stat(DefaultHost); err != nil && (errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES)) {
		return SelfHost()
	}
	return DefaultHost
}
