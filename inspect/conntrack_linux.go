package inspect

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// kernelConntrack dumps the IPv4 conntrack table over ctnetlink with the
// target's NETLINK_NETFILTER socket, when the module gate says the dump
// loads nothing (kmod.NeedConntrack).
type kernelConntrack struct{}

var _ ConntrackReader = kernelConntrack{}

func (kernelConntrack) ReadConntrack(t *Target) ([]topology.Conntrack, error) {
	if t.hints.conntrack == 0 {
		// nf_conntrack_count is 0: nothing to dump, and a dump would walk
		// the node-wide conntrack hash for nothing.
		return []topology.Conntrack{}, nil
	}
	if err := kmod.NeedConntrack.Check(t.gate()); err != nil {
		return nil, err
	}
	h, err := t.handle()
	if err != nil {
		return nil, err
	}
	if !t.res.netfilter {
		// The handle has no NETLINK_NETFILTER socket (nfnetlink was
		// missing when it was opened): vishvananda/netlink would open
		// one in our namespace instead.
		return nil, &kmod.AbsentError{What: kmod.NeedConntrack.What, Module: "nfnetlink",
			How: "not loaded when this namespace's netlink sockets were opened"}
	}
	flows, err := retry(func() ([]*netlink.ConntrackFlow, error) {
		return h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	})
	if err != nil {
		return nil, fmt.Errorf("conntrack list: %w", err)
	}
	out := make([]topology.Conntrack, 0, len(flows))
	for _, f := range flows {
		c := topology.Conntrack{
			Proto:   topology.ProtoName(f.Forward.Protocol),
			Orig:    tuple(f.Forward),
			Reply:   tuple(f.Reverse),
			Mark:    f.Mark,
			Timeout: f.TimeOut,
			Zone:    f.Zone,
		}
		if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok {
			c.State = tcpConntrackState(tcp.State)
		}
		out = append(out, c)
	}
	return out, nil
}

func tuple(t netlink.IPTuple) topology.Tuple {
	return topology.Tuple{Src: addrOf(t.SrcIP), Dst: addrOf(t.DstIP), SPort: t.SrcPort, DPort: t.DstPort}
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// tcpConntrackStates are enum tcp_conntrack's names as conntrack -L prints
// them, but for the kernel's SYN_SENT2, which libnetfilter_conntrack calls
// by its old name LISTEN (parse.Conntrack reads that back as SYN_SENT2).
var tcpConntrackStates = []string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
	"LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

func tcpConntrackState(s uint8) string {
	if int(s) < len(tcpConntrackStates) {
		return tcpConntrackStates[s]
	}
	return fmt.Sprint(s)
}
