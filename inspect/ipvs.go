package inspect

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// NoIPVSReason is IPVS.Reason when the kernel has no IPVS family (with
// ip_vs not loaded the reason says that instead, see kmod.IPVS).
const NoIPVSReason = noIPVSPrefix + kmod.FamilyNotFound

const noIPVSPrefix = "kernel has no IPVS: "

// VirtualServer is an IPVS service as the kernel reports it (the subset
// meshtrace uses, in the kernel's own units), kube-proxy style: the
// netlink client converts into it, ipvsTable converts it into the model.
type VirtualServer struct {
	AddressFamily uint16 // AF_INET or AF_INET6
	FWMark        uint32
	Protocol      uint16 // IPPROTO_*; 0 for fwmark services
	Address       netip.Addr
	Port          uint16
	Scheduler     string
	Flags         uint32 // IP_VS_SVC_F_*
	Timeout       uint32 // persistence timeout, seconds
	Stats         IPVSCounters
}

// RealServer is an IPVS destination as the kernel reports it.
type RealServer struct {
	Address         netip.Addr
	Port            uint16
	Weight          int
	ConnectionFlags uint32 // IP_VS_CONN_F_*: the low bits are the forwarding method
	ActiveConns     int
	InactiveConns   int
	Stats           IPVSCounters
}

// IPVSCounters are the kernel's per-service / per-destination counters.
type IPVSCounters struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

// IPVSClient lists one namespace's IPVS table.
type IPVSClient interface {
	Services() ([]VirtualServer, error)
	Destinations(VirtualServer) ([]RealServer, error)
	// Timeouts are the idle timeouts (IPVS_CMD_GET_CONFIG).
	Timeouts() (topology.IPVSTimeouts, error)
	Close()
}

// IPVSKernel is what the IPVS reader needs from the kernel.
type IPVSKernel interface {
	// HasIPVS reports whether the generic netlink family "IPVS" exists
	// as seen from t. moby/ipvs answers "no services", silently, when it
	// does not, so this is asked first; and only when the module gate
	// says ip_vs is there, as asking for a missing family loads it.
	HasIPVS(t *Target) (bool, error)
	Open(t *Target) (IPVSClient, error)
}

// ipvsTable is the IPVSReader over an IPVSKernel.
type ipvsTable struct{ k IPVSKernel }

var _ IPVSReader = ipvsTable{}

// NewIPVSReader returns the IPVS reader over k.
func NewIPVSReader(k IPVSKernel) IPVSReader { return ipvsTable{k} }

func (r ipvsTable) ReadIPVS(t *Target) (*topology.IPVS, error) {
	ok, reason, err := kmod.IPVS(t.gate(), func() (bool, error) { return r.k.HasIPVS(t) })
	if err != nil {
		return nil, fmt.Errorf("generic netlink family IPVS: %w", err)
	}
	if !ok {
		return &topology.IPVS{Available: false, Reason: noIPVSPrefix + reason, Services: []*topology.IPVSService{}}, nil
	}
	c, err := r.k.Open(t)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	svcs, err := c.Services()
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out := &topology.IPVS{Available: true, Services: make([]*topology.IPVSService, 0, len(svcs))}
	if to, err := c.Timeouts(); err == nil {
		out.Timeouts = &to
	}
	for _, vs := range svcs {
		s := convertService(vs)
		rs, err := c.Destinations(vs)
		if err != nil {
			return out, fmt.Errorf("list destinations of %s: %w", describeService(s), err)
		}
		for _, d := range rs {
			s.Dests = append(s.Dests, convertDest(d))
		}
		out.Services = append(out.Services, s)
	}
	return out, nil
}

// ipvsPersistent is IP_VS_SVC_F_PERSISTENT.
const ipvsPersistent = 0x1

func convertService(vs VirtualServer) *topology.IPVSService {
	s := &topology.IPVSService{
		FWMark:    vs.FWMark,
		Scheduler: vs.Scheduler,
		Impl:      "ipvs",
		Dests:     []*topology.IPVSDest{},
		Stats:     convertStats(vs.Stats),
	}
	if vs.FWMark == 0 {
		s.Proto = protoName(vs.Protocol)
		s.Addr = vs.Address.Unmap()
		s.Port = int(vs.Port)
	}
	if vs.Flags&ipvsPersistent != 0 {
		s.Persistent = int(vs.Timeout)
	}
	return s
}

func convertDest(d RealServer) *topology.IPVSDest {
	return &topology.IPVSDest{
		Addr:        d.Address.Unmap(),
		Port:        int(d.Port),
		Forward:     forwardName(d.ConnectionFlags),
		Weight:      d.Weight,
		ActiveConns: d.ActiveConns,
		InactConns:  d.InactiveConns,
		Stats:       convertStats(d.Stats),
	}
}

func convertStats(c IPVSCounters) *topology.IPVSStats {
	return &topology.IPVSStats{Conns: c.Conns, InPkts: c.InPkts, OutPkts: c.OutPkts, InBytes: c.InBytes, OutBytes: c.OutBytes}
}

// forwardName names IP_VS_CONN_F_FWD_MASK's methods as ipvsadm does
// (Masq, Local, Tunnel, Route), lower-case.
func forwardName(flags uint32) string {
	switch flags & 0x7 {
	case 0:
		return "masq"
	case 1:
		return "local"
	case 2:
		return "tunnel"
	case 3:
		return "route"
	case 4:
		return "bypass"
	}
	return "fwd" + strconv.Itoa(int(flags&0x7))
}

func protoName(p uint16) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

func describeService(s *topology.IPVSService) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return fmt.Sprintf("%s %s", s.Proto, netip.AddrPortFrom(s.Addr, uint16(s.Port)))
}
