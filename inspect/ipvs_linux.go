package inspect

import (
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/meshtrace/meshtrace/topology"

	"github.com/moby/ipvs"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// kernelIPVS talks to the kernel's IPVS over generic netlink.
type kernelIPVS struct{}

var _ IPVSKernel = kernelIPVS{}

// HasIPVS asks the generic netlink controller, from inside t, for the
// family "IPVS" (ipvsTable asks only when ip_vs is there).
func (kernelIPVS) HasIPVS(t *Target) (bool, error) {
	h, err := t.handle()
	if err != nil {
		return false, err
	}
	return kmod.IPVSFamily(h.GenlFamilyGet)
}

// mobySetup runs moby/ipvs's one-time setup (a modprobe and a family
// lookup that log through logrus) with logrus silenced, once. Open is
// called only once the family exists, so ip_vs is loaded and the modprobe
// finds nothing to do.
var mobySetup sync.Once

// Open makes a moby/ipvs handle whose socket lives in t: ipvs.New("")
// opens it in the current namespace, so it is called inside netnsx.Do.
func (kernelIPVS) Open(t *Target) (IPVSClient, error) {
	var h *ipvs.Handle
	err := netnsx.Do(t.Path, func() error {
		var err error
		mobySetup.Do(func() {
			l := logrus.StandardLogger()
			out := l.Out
			l.SetOutput(io.Discard)
			defer l.SetOutput(out)
			h, err = ipvs.New("")
		})
		if h == nil && err == nil {
			h, err = ipvs.New("")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return mobyClient{h}, nil
}

// mobyClient converts moby/ipvs's types into VirtualServer/RealServer.
type mobyClient struct{ h *ipvs.Handle }

func (c mobyClient) Close() { c.h.Close() }

func (c mobyClient) Timeouts() (topology.IPVSTimeouts, error) {
	cfg, err := c.h.GetConfig()
	if err != nil {
		return topology.IPVSTimeouts{}, err
	}
	return topology.IPVSTimeouts{TCP: int(cfg.TimeoutTCP.Seconds()), TCPFin: int(cfg.TimeoutTCPFin.Seconds()), UDP: int(cfg.TimeoutUDP.Seconds())}, nil
}

func (c mobyClient) Services() ([]VirtualServer, error) {
	svcs, err := c.h.GetServices()
	if err != nil {
		return nil, err
	}
	out := make([]VirtualServer, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, VirtualServer{
			AddressFamily: s.AddressFamily, FWMark: s.FWMark, Protocol: s.Protocol, Address: netAddr(s.Address), Port: s.Port,
			Scheduler: s.SchedName, Flags: s.Flags, Timeout: s.Timeout,
			Stats: IPVSCounters{Conns: uint64(s.Stats.Connections), InPkts: uint64(s.Stats.PacketsIn),
				OutPkts: uint64(s.Stats.PacketsOut), InBytes: s.Stats.BytesIn, OutBytes: s.Stats.BytesOut},
		})
	}
	return out, nil
}

func (c mobyClient) Destinations(vs VirtualServer) ([]RealServer, error) {
	s := &ipvs.Service{FWMark: vs.FWMark, Protocol: vs.Protocol, Port: vs.Port, SchedName: vs.Scheduler,
		AddressFamily: vs.AddressFamily}
	if s.AddressFamily == 0 {
		s.AddressFamily = unix.AF_INET
	}
	if vs.Address.IsValid() {
		s.Address = net.IP(vs.Address.AsSlice())
	}
	ds, err := c.h.GetDestinations(s)
	if err != nil {
		return nil, err
	}
	out := make([]RealServer, 0, len(ds))
	for _, d := range ds {
		out = append(out, RealServer{
			Address: netAddr(d.Address), Port: d.Port, Weight: d.Weight, ConnectionFlags: d.ConnectionFlags,
			ActiveConns: d.ActiveConnections, InactiveConns: d.InactiveConnections,
			Stats: IPVSCounters{Conns: uint64(d.Stats.Connections), InPkts: uint64(d.Stats.PacketsIn),
				OutPkts: uint64(d.Stats.PacketsOut), InBytes: d.Stats.BytesIn, OutBytes: d.Stats.BytesOut},
		})
	}
	return out, nil
}

func netAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
