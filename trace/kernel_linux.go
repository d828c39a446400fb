package trace

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// Kernel reads conntrack over netlink and /proc/net/ip_vs_conn, each
// inside the namespace (sockets made and files read on a thread that
// entered it).
type Kernel struct {
	// Modules is the module gate asked before the ctnetlink dump, which
	// would load nf_conntrack_netlink (kmod.NeedConntrack); nil =
	// kmod.Host(). Reading /proc/net/ip_vs_conn loads nothing.
	Modules kmod.Gate
}

var _ Tables = Kernel{}

// Conntrack implements Tables; with a module missing it reads nothing and
// says why (a note of the trace: the entries are not collected).
func (k Kernel) Conntrack(netnsPath string) ([]topology.Conntrack, error) {
	g := k.Modules
	if g == nil {
		g = kmod.Host()
	}
	if err := kmod.NeedConntrack.Check(g); err != nil {
		return nil, err
	}
	var flows []*netlink.ConntrackFlow
	err := netnsx.Do(netnsPath, func() error {
		var err error
		flows, err = netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("conntrack in %s: %w", netnsPath, err)
	}
	out := make([]topology.Conntrack, 0, len(flows))
	for _, f := range flows {
		c := topology.Conntrack{Proto: ProtoName(f.Forward.Protocol), Orig: ctTuple(f.Forward), Reply: ctTuple(f.Reverse), Mark: f.Mark}
		if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok && int(tcp.State) < len(tcpStates) {
			c.State = tcpStates[tcp.State]
		}
		out = append(out, c)
	}
	return out, nil
}

var tcpStates = []string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

func ctTuple(t netlink.IPTuple) topology.Tuple {
	return topology.Tuple{Src: addrOf(t.SrcIP), Dst: addrOf(t.DstIP), SPort: t.SrcPort, DPort: t.DstPort}
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// IPVSConns implements Tables: nil without an error when the kernel has no
// IPVS.
func (Kernel) IPVSConns(netnsPath string) ([]IPVSConn, error) {
	var b []byte
	err := netnsx.Do(netnsPath, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/ip_vs_conn")
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ip_vs_conn in %s: %w", netnsPath, err)
	}
	return ParseIPVSConn(netnsPath+":/proc/net/ip_vs_conn", bytes.NewReader(b))
}
