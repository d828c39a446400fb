package topology_test

import (
	"net/netip"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

// TestNodeAddress: the node's address and uplink, for each way hosts are
// wired: a NIC; the NIC enslaved to a bridge holding the address (known by
// the default route, or by the NIC among the bridge's ports when the
// routes were not read); only Docker's bridges; nothing.
func TestNodeAddress(t *testing.T) {
	port := func(name, kind, master string) *topology.Link {
		l := link(name, kind, 1500)
		l.Master = master
		return l
	}
	veth := port("veth1", "veth", "docker_gwbridge")
	veth.Peer = &topology.Peer{Index: 7, NetnsID: 0}
	gw := link("docker_gwbridge", "bridge", 1500, "172.18.0.1/16")
	lo := link("lo", "loopback", 65536, "127.0.0.1/8")
	dflt := []topology.Route{{Dst: topology.DefaultRoute, Gateway: netip.MustParseAddr("192.168.1.1"), Dev: "br0"}}
	for _, tc := range []struct {
		name   string
		links  []*topology.Link
		routes []topology.Route
		addr   string
		uplink string
	}{
		{"nic", []*topology.Link{lo, gw, link("eth0", "device", 1500, "fe80::1/64", "192.168.1.10/24"), veth}, nil, "192.168.1.10", "eth0"},
		{"bridged nic, default route", []*topology.Link{lo, gw, link("br0", "bridge", 1500, "192.168.1.10/24"), port("eth0", "veth", "br0"), veth}, dflt, "192.168.1.10", "br0"},
		{"bridged nic, no routes read", []*topology.Link{lo, gw, link("br0", "bridge", 1500, "192.168.1.10/24"), port("eth0", "device", "br0"), veth}, nil, "192.168.1.10", "br0"},
		{"plain ip addr: a port of unknown kind", []*topology.Link{lo, gw, link("br0", "bridge", 1500, "192.168.1.10/24"), port("eth0", "", "br0"), veth}, nil, "192.168.1.10", "br0"},
		{"docker's bridge only", []*topology.Link{lo, gw, veth}, nil, "172.18.0.1", "docker_gwbridge"},
		{"nothing", []*topology.Link{lo}, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "host"}, Links: tc.links, Routes: tc.routes}
			a, l := topology.NodeAddress(host)
			name := ""
			if l != nil {
				name = l.Name
			}
			want := netip.Addr{}
			if tc.addr != "" {
				want = netip.MustParseAddr(tc.addr)
			}
			if a != want || name != tc.uplink {
				t.Errorf("NodeAddress = %v on %q, want %v on %q", a, name, want, tc.uplink)
			}
		})
	}
}
