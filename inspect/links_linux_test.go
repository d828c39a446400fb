package inspect

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/topology"
)

func TestNeighState(t *testing.T) {
	for s, want := range map[int]string{
		netlink.NUD_PERMANENT:                       "permanent",
		netlink.NUD_REACHABLE:                       "reachable",
		netlink.NUD_STALE | netlink.NUD_NOARP:       "stale,noarp",
		netlink.NUD_NONE:                            "none",
		netlink.NUD_FAILED | netlink.NUD_INCOMPLETE: "incomplete,failed",
	} {
		if got := neighState(s); got != want {
			t.Errorf("neighState(%#x) = %q, want %q", s, got, want)
		}
	}
}

func TestConvertRoute(t *testing.T) {
	names := map[int]string{2: "eth0", 3: "eth1"}
	_, dst, _ := net.ParseCIDR("10.0.0.0/24")
	got := convertRoute(netlink.Route{Dst: dst, LinkIndex: 2, Src: net.ParseIP("10.0.0.4"), Table: unix.RT_TABLE_MAIN}, names)
	got = append(got, convertRoute(netlink.Route{Gw: net.ParseIP("172.18.0.1"), LinkIndex: 3, Table: unix.RT_TABLE_MAIN}, names)...)
	got = append(got, convertRoute(netlink.Route{Table: 100, MultiPath: []*netlink.NexthopInfo{
		{LinkIndex: 2, Gw: net.ParseIP("10.0.0.1")}, {LinkIndex: 3, Gw: net.ParseIP("172.18.0.1")}}}, names)...)
	want := []topology.Route{
		{Dst: netip.MustParsePrefix("10.0.0.0/24"), Dev: "eth0", Src: netip.MustParseAddr("10.0.0.4")},
		{Dst: topology.DefaultRoute, Gateway: netip.MustParseAddr("172.18.0.1"), Dev: "eth1"},
		{Dst: topology.DefaultRoute, Gateway: netip.MustParseAddr("10.0.0.1"), Dev: "eth0", Table: 100},
		{Dst: topology.DefaultRoute, Gateway: netip.MustParseAddr("172.18.0.1"), Dev: "eth1", Table: 100},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConvertLink(t *testing.T) {
	names := map[int]string{4: "br0"}
	mac, _ := net.ParseMAC("02:42:0a:00:00:04")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 7, Name: "veth0", MTU: 1450, HardwareAddr: mac,
		Flags: net.FlagUp, MasterIndex: 4, ParentIndex: 2, NetNsID: 3}}
	vx := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Index: 5, Name: "vxlan0", MTU: 1450, MasterIndex: 4, NetNsID: 0},
		VxlanId: 4096, Port: 4789, Learning: true, Proxy: true, SrcAddr: net.ParseIP("192.168.99.10")}
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo", MTU: 65536, Flags: net.FlagUp | net.FlagLoopback}}
	got := []*topology.Link{convertLink(veth, names), convertLink(vx, names), convertLink(lo, names)}
	want := []*topology.Link{
		{Index: 7, Name: "veth0", Kind: "veth", MTU: 1450, MAC: topology.MustParseMAC("02:42:0a:00:00:04"), Up: true, Master: "br0",
			Peer: &topology.Peer{Index: 2, NetnsID: 3}},
		{Index: 5, Name: "vxlan0", Kind: "vxlan", MTU: 1450, Master: "br0",
			VXLAN: &topology.VXLANInfo{ID: 4096, Port: 4789, Local: netip.MustParseAddr("192.168.99.10"), Learning: true, Proxy: true}},
		{Index: 1, Name: "lo", Kind: "loopback", MTU: 65536, Up: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
