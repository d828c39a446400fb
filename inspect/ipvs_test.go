package inspect

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

type fakeIPVSKernel struct {
	has     bool
	hasErr  error
	openErr error
	client  *fakeIPVSClient
}

var _ IPVSKernel = (*fakeIPVSKernel)(nil)

func (k *fakeIPVSKernel) HasIPVS(*Target) (bool, error) { return k.has, k.hasErr }

func (k *fakeIPVSKernel) Open(*Target) (IPVSClient, error) {
	if k.openErr != nil {
		return nil, k.openErr
	}
	return k.client, nil
}

type fakeIPVSClient struct {
	svcs    []VirtualServer
	dests   map[uint32][]RealServer // by fwmark, or by port for VIP services
	destErr error
	closed  bool
}

var _ IPVSClient = (*fakeIPVSClient)(nil)

func (c *fakeIPVSClient) Services() ([]VirtualServer, error) { return c.svcs, nil }
func (c *fakeIPVSClient) Close()                             { c.closed = true }
func (c *fakeIPVSClient) Timeouts() (topology.IPVSTimeouts, error) {
	return topology.IPVSTimeouts{TCP: 900, TCPFin: 120, UDP: 300}, nil
}

func (c *fakeIPVSClient) Destinations(vs VirtualServer) ([]RealServer, error) {
	if c.destErr != nil && vs.Port != 0 {
		return nil, c.destErr
	}
	if vs.FWMark != 0 {
		return c.dests[vs.FWMark], nil
	}
	return c.dests[uint32(vs.Port)], nil
}

// What kube-proxy and dockerd program: an FWM service for a published
// port (Masq real servers at port 0) and a TCP VIP service with
// persistence; counters as the kernel reports them.
func ingressTables() *fakeIPVSClient {
	return &fakeIPVSClient{
		svcs: []VirtualServer{
			{AddressFamily: 2, FWMark: 256, Scheduler: "rr", Stats: IPVSCounters{Conns: 3, InPkts: 30, OutPkts: 20, InBytes: 3000, OutBytes: 9000}},
			{AddressFamily: 2, Protocol: 6, Address: netip.MustParseAddr("::ffff:10.0.0.3"), Port: 80, Scheduler: "wlc",
				Flags: 0x1, Timeout: 300},
		},
		dests: map[uint32][]RealServer{
			256: {
				{Address: netip.MustParseAddr("10.0.0.4"), Weight: 1, ActiveConns: 1, InactiveConns: 2,
					Stats: IPVSCounters{Conns: 2, InPkts: 20}},
				{Address: netip.MustParseAddr("10.0.0.5"), Weight: 0, ConnectionFlags: 0x0100 | 3},
			},
			80: {{Address: netip.MustParseAddr("10.0.0.6"), Port: 8080, Weight: 5, ConnectionFlags: 2}},
		},
	}
}

func TestReadIPVSAvailable(t *testing.T) {
	c := ingressTables()
	got, err := NewIPVSReader(&fakeIPVSKernel{has: true, client: c}).ReadIPVS(&Target{})
	if err != nil {
		t.Fatal(err)
	}
	want := &topology.IPVS{Available: true, Timeouts: &topology.IPVSTimeouts{TCP: 900, TCPFin: 120, UDP: 300}, Services: []*topology.IPVSService{
		{FWMark: 256, Scheduler: "rr", Impl: "ipvs",
			Stats: &topology.IPVSStats{Conns: 3, InPkts: 30, OutPkts: 20, InBytes: 3000, OutBytes: 9000},
			Dests: []*topology.IPVSDest{
				{Addr: netip.MustParseAddr("10.0.0.4"), Forward: "masq", Weight: 1, ActiveConns: 1, InactConns: 2,
					Stats: &topology.IPVSStats{Conns: 2, InPkts: 20}},
				{Addr: netip.MustParseAddr("10.0.0.5"), Forward: "route", Weight: 0, Stats: &topology.IPVSStats{}},
			}},
		{Proto: "tcp", Addr: netip.MustParseAddr("10.0.0.3"), Port: 80, Scheduler: "wlc", Persistent: 300, Impl: "ipvs",
			Stats: &topology.IPVSStats{},
			Dests: []*topology.IPVSDest{
				{Addr: netip.MustParseAddr("10.0.0.6"), Port: 8080, Forward: "tunnel", Weight: 5, Stats: &topology.IPVSStats{}},
			}},
	}}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("ipvs (-want +got):\n%s", diff)
	}
	if !c.closed {
		t.Error("client not closed")
	}
}

// Available with no services is a kernel that has IPVS and no table: not
// the same as a kernel without IPVS.
func TestReadIPVSEmptyAndMissing(t *testing.T) {
	got, err := NewIPVSReader(&fakeIPVSKernel{has: true, client: &fakeIPVSClient{}}).ReadIPVS(&Target{})
	if err != nil || !got.Available || got.Services == nil || len(got.Services) != 0 || got.Reason != "" {
		t.Errorf("empty table: %+v %v", got, err)
	}
	k := &fakeIPVSKernel{has: false, openErr: errors.New("must not be opened")}
	got, err = NewIPVSReader(k).ReadIPVS(&Target{})
	if err != nil || got.Available || got.Reason != NoIPVSReason {
		t.Errorf("no IPVS: %+v %v", got, err)
	}
}

func TestReadIPVSErrors(t *testing.T) {
	_, err := NewIPVSReader(&fakeIPVSKernel{hasErr: errors.New("genetlink: timeout")}).ReadIPVS(&Target{})
	if err == nil || !strings.Contains(err.Error(), "genetlink: timeout") {
		t.Errorf("family lookup failure: %v", err)
	}
	_, err = NewIPVSReader(&fakeIPVSKernel{has: true, openErr: errors.New("socket: too many open files")}).ReadIPVS(&Target{})
	if err == nil || !strings.Contains(err.Error(), "too many open files") {
		t.Errorf("open failure: %v", err)
	}
	c := ingressTables()
	c.destErr = errors.New("interrupted")
	got, err := NewIPVSReader(&fakeIPVSKernel{has: true, client: c}).ReadIPVS(&Target{})
	if err == nil || !strings.Contains(err.Error(), "tcp 10.0.0.3:80") {
		t.Errorf("destination failure not naming the service: %v", err)
	}
	if got == nil || len(got.Services) != 1 || got.Services[0].FWMark != 256 {
		t.Errorf("services read before the failure were dropped: %+v", got)
	}
}

func TestIPVSNames(t *testing.T) {
	for flags, want := range map[uint32]string{0: "masq", 1: "local", 2: "tunnel", 3: "route", 4: "bypass", 5: "fwd5", 0x103: "route"} {
		if got := forwardName(flags); got != want {
			t.Errorf("forwardName(%#x) = %q, want %q", flags, got, want)
		}
	}
	for p, want := range map[uint16]string{6: "tcp", 17: "udp", 132: "sctp", 99: "99"} {
		if got := protoName(p); got != want {
			t.Errorf("protoName(%d) = %q, want %q", p, got, want)
		}
	}
}
