//go:build !linux

package capture

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// errNotLinux: live capture and the kernel's tables are Linux's; replay
// works everywhere.
var errNotLinux = errors.New("live tracing needs Linux (AF_PACKET, network namespaces): capture on the node (`meshtrace trace --pcap FILE`, or tcpdump) and replay the file here")

// AFPacket stands in for the Linux capture.
type AFPacket struct {
	BlockSize, Blocks int
	Modules           kmod.Gate
}

var _ Opener = AFPacket{}

// Open says a live capture needs Linux.
func (AFPacket) Open(p trace.Point, dir trace.Dir, _ []bpf.RawInstruction) (Socket, error) {
	return nil, fmt.Errorf("netns %s: capture on %s (%s): %w", p.Netns, p.Ifname, dir, errNotLinux)
}

// Kernel stands in for the Linux table readers.
type Kernel struct{ Modules kmod.Gate }

var _ Tables = Kernel{}

// Conntrack says it needs Linux.
func (Kernel) Conntrack(string) ([]topology.Conntrack, error) { return nil, errNotLinux }

// IPVSConns says it needs Linux.
func (Kernel) IPVSConns(string) ([]trace.IPVSConn, error) { return nil, errNotLinux }
