package parse

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

// The state-variants namespace is built by record-state.sh with known
// routes, neighbours, FDB entries, knobs, sockets and connections: these
// tests hold the parsers to what it built.

func variant(name string) string { return cmdout("state-variants", name) }

func TestIPRouteVariants(t *testing.T) {
	got := parseClean(t, variant("ip-route.txt"), IPRoute)
	want := []topology.Route{
		{Dst: topology.DefaultRoute, Gateway: netip.MustParseAddr("10.9.0.254"), Dev: "d0"},
		{Dst: netip.MustParsePrefix("10.7.0.0/24"), Dev: "eth0.5", Src: netip.MustParseAddr("10.7.0.1")},
		{Dst: netip.MustParsePrefix("10.8.0.0/24"), Dev: "d4", Src: netip.MustParseAddr("10.8.0.1")}, // linkdown
		{Dst: netip.MustParsePrefix("10.9.0.0/24"), Dev: "d0", Src: netip.MustParseAddr("10.9.0.1")},
		{Dst: netip.MustParsePrefix("10.20.0.0/16"), Gateway: netip.MustParseAddr("10.9.0.2"), Dev: "d0"},
		{Dst: netip.MustParsePrefix("10.30.0.0/16"), Gateway: netip.MustParseAddr("10.9.0.2"), Dev: "d0"}, // multipath: one per nexthop
		{Dst: netip.MustParsePrefix("10.30.0.0/16"), Gateway: netip.MustParseAddr("10.9.0.3"), Dev: "d0"},
		{Dst: netip.MustParsePrefix("10.40.0.0/16")}, // blackhole
		{Dst: netip.MustParsePrefix("10.41.0.0/16")}, // unreachable
		{Dst: netip.MustParsePrefix("10.42.0.0/16")}, // prohibit
		{Dst: netip.MustParsePrefix("10.50.1.1/32"), Gateway: netip.MustParseAddr("10.9.0.2"), Dev: "d0"},
		{Dst: netip.MustParsePrefix("10.60.0.0/16"), Dev: "d0", Src: netip.MustParseAddr("10.9.0.1")},
		{Dst: netip.MustParsePrefix("10.70.0.0/16"), Gateway: netip.MustParseAddr("10.99.0.1"), Dev: "d0"}, // onlink
		{Dst: netip.MustParsePrefix("10.80.0.0/16"), Gateway: netip.MustParseAddr("10.8.0.2"), Dev: "d4"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}
	all := parseClean(t, variant("table-all-ip-route.txt"), IPRoute)
	if all[0] != (topology.Route{Dst: netip.MustParsePrefix("10.90.0.0/16"), Dev: "d0", Table: 100}) {
		t.Errorf("table 100 route: %+v", all[0])
	}
	local := 0
	for _, r := range all {
		if r.Table == 255 {
			local++
		}
	}
	if d := cmp.Diff(want, all[1:len(all)-local]); d != "" || local != 9 {
		t.Errorf("table all: %d local routes, main (-want +got):\n%s", local, d)
	}
	v6 := parseClean(t, variant("v6-ip-route.txt"), IPRoute)
	if len(v6) != 8 || v6[1] != (topology.Route{Dst: netip.MustParsePrefix("fd01::/64"), Gateway: netip.MustParseAddr("fd00::2"), Dev: "d0"}) {
		t.Errorf("ip -6 route: %+v", v6)
	}
}

func TestIPNeighVariants(t *testing.T) {
	got := parseClean(t, variant("ip-neigh.txt"), IPNeigh)
	want := []topology.Neigh{
		{IP: netip.MustParseAddr("0.0.0.0"), MAC: topology.MustParseMAC("00:00:00:00:00:00"), Dev: "lo", State: "noarp"},
		{IP: netip.MustParseAddr("10.9.0.77"), Dev: "d0", State: "incomplete"},
		{IP: netip.MustParseAddr("10.9.0.4"), MAC: topology.MustParseMAC("02:42:0a:09:00:04"), Dev: "d0", State: "stale"},
		{IP: netip.MustParseAddr("10.9.0.2"), MAC: topology.MustParseMAC("02:42:0a:09:00:02"), Dev: "d0", State: "permanent"},
		{IP: netip.MustParseAddr("224.0.0.22"), MAC: topology.MustParseMAC("01:00:5e:00:00:16"), Dev: "br9", State: "noarp"},
		{IP: netip.MustParseAddr("10.9.0.5"), MAC: topology.MustParseMAC("02:42:0a:09:00:05"), Dev: "d0", State: "noarp"},
		{IP: netip.MustParseAddr("10.9.0.6"), Dev: "d0", State: "failed"},
		{IP: netip.MustParseAddr("10.9.0.3"), MAC: topology.MustParseMAC("02:42:0a:09:00:03"), Dev: "d0", State: "reachable"},
	}
	byIP := cmpopts.SortSlices(func(x, y topology.Neigh) bool { return x.IP.Less(y.IP) }) // the kernel's hash order
	if d := cmp.Diff(want, got, byIP); d != "" {
		t.Errorf("neighbours (-want +got):\n%s", d)
	}
	// Plain `ip neigh` hides NOARP entries but shows IPv6 ones (a router).
	all := parseClean(t, variant("all-families-ip-neigh.txt"), IPNeigh)
	if n := all[len(all)-1]; len(all) != 6 || n != (topology.Neigh{IP: netip.MustParseAddr("fd00::2"), MAC: topology.MustParseMAC("02:42:0a:09:00:02"), Dev: "d0", State: "permanent"}) {
		t.Errorf("ip neigh: %+v", all)
	}
}

func TestBridgeFDBVariants(t *testing.T) {
	got := parseClean(t, variant("bridge-fdb.txt"), BridgeFDB)
	want := map[string]topology.FDB{ // by MAC and dev, the entries record-state.sh made
		"02:42:0a:09:00:0c d1":  {MAC: topology.MustParseMAC("02:42:0a:09:00:0c"), Dev: "d1", State: "reachable"},                                        // master dynamic
		"02:42:0a:09:00:0b d1":  {MAC: topology.MustParseMAC("02:42:0a:09:00:0b"), Dev: "d1", State: "noarp"},                                            // master static
		"02:42:0a:09:00:0a vx9": {MAC: topology.MustParseMAC("02:42:0a:09:00:0a"), Dev: "vx9", Dst: netip.MustParseAddr("10.9.0.3"), State: "permanent"}, // self permanent
		"00:00:00:00:00:00 vx9": {MAC: topology.MustParseMAC("00:00:00:00:00:00"), Dev: "vx9", Dst: netip.MustParseAddr("10.9.0.2"), State: "permanent"}, // default remote
	}
	for _, e := range got {
		if w, ok := want[e.MAC.String()+" "+e.Dev]; ok {
			if d := cmp.Diff(w, e); d != "" {
				t.Errorf("%s (-want +got):\n%s", e.MAC, d)
			}
			delete(want, e.MAC.String()+" "+e.Dev)
		}
		if e.MAC.String() == "33:33:00:00:00:01" && e.State != "permanent" {
			t.Errorf("multicast entry %+v", e)
		}
	}
	if len(got) != 28 || len(want) > 0 {
		t.Errorf("%d entries; missing %v", len(got), want)
	}
}

func TestSysctlVariants(t *testing.T) {
	got := parseClean(t, variant("sysctl.txt"), Sysctl)
	for k, v := range map[string]string{
		"net.ipv4.conf.eth0.5.rp_filter":   "2", // printed eth0/5
		"net.ipv4.conf.d0.rp_filter":       "1",
		"net.ipv4.conf.all.route_localnet": "1",
		"net.ipv4.ip_forward":              "0",
		"net.netfilter.nf_conntrack_max":   "262144",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// `sysctl net` has every one of them with the same value (but the
	// count, which moved between the two commands).
	all := parseClean(t, variant("net-sysctl.txt"), Sysctl)
	for k, v := range got {
		if all[k] != v && k != "net.netfilter.nf_conntrack_count" {
			t.Errorf("sysctl net: %s = %q, sysctl.txt says %q", k, all[k], v)
		}
	}
	if len(all) < 1000 || all["net.ipv4.ip_local_port_range"] != "32768\t60999" {
		t.Errorf("sysctl net: %d keys, ip_local_port_range %q", len(all), all["net.ipv4.ip_local_port_range"])
	}
}

func TestSSVariants(t *testing.T) {
	got := parseClean(t, variant("ss.txt"), SS)
	a := netip.MustParseAddr
	want := []topology.Socket{
		{Proto: "udp", Addr: a("0.0.0.0"), Port: 53},
		{Proto: "udp", Addr: a("0.0.0.0"), Port: 68},   // bound to d0
		{Proto: "udp", Addr: a("0.0.0.0"), Port: 4789}, // the VXLAN device's
		{Proto: "udp", Addr: a("::"), Port: 546},       // [::]%d0
		{Proto: "udp", Addr: a("::"), Port: 5353},      // *: dual-stack
		{Proto: "udp", Addr: a("::"), Port: 5354},      // [::]: v6only
		{Proto: "tcp", Addr: a("127.0.0.1"), Port: 8080},
		{Proto: "tcp", Addr: a("0.0.0.0"), Port: 80},
		{Proto: "tcp", Addr: a("10.9.0.1"), Port: 90},
		{Proto: "tcp", Addr: a("::"), Port: 8443},
		{Proto: "tcp", Addr: a("::"), Port: 9443},
		{Proto: "tcp", Addr: a("::1"), Port: 81},
		{Proto: "tcp", Addr: a("fd00::1"), Port: 83},
		{Proto: "tcp", Addr: a("127.0.0.1"), Port: 82}, // [::ffff:127.0.0.1]
	}
	// ss lists in the kernel's hash order.
	opts := cmp.Options{cmpopts.EquateComparable(netip.Addr{}), cmpopts.SortSlices(func(x, y topology.Socket) bool {
		return x.Proto < y.Proto || x.Proto == y.Proto && (x.Port < y.Port || x.Port == y.Port && x.Addr.Less(y.Addr))
	})}
	if d := cmp.Diff(want, got, opts); d != "" {
		t.Errorf("sockets (-want +got):\n%s", d)
	}
	// With a header, and with every state (a connected UDP socket): the
	// same listening sockets.
	for _, f := range []string{"header-ss.txt", "all-states-ss.txt"} {
		other := parseClean(t, variant(f), SS)
		if d := cmp.Diff(want, other, opts); d != "" {
			t.Errorf("%s (-ss.txt +%s):\n%s", f, f, d)
		}
	}
}

func TestConntrackVariants(t *testing.T) {
	got := parseClean(t, variant("conntrack.txt"), Conntrack)
	a := netip.MustParseAddr
	lo, nobody, anyA := a("10.9.0.1"), a("10.9.0.77"), a("0.0.0.0")
	tuples := func(src, dst netip.Addr, port, replyPort uint16) (topology.Tuple, topology.Tuple) {
		return topology.Tuple{Src: src, Dst: dst, DPort: port}, topology.Tuple{Src: dst, Dst: src, SPort: replyPort}
	}
	entry := func(proto, state string, mark uint32, zone uint16, src, dst netip.Addr, port, replyPort uint16) topology.Conntrack {
		o, r := tuples(src, dst, port, replyPort)
		return topology.Conntrack{Proto: proto, State: state, Mark: mark, Zone: zone, Orig: o, Reply: r}
	}
	want := []topology.Conntrack{
		entry("tcp", "CLOSE_WAIT", 5, 0, lo, lo, 80, 80),               // CONNMARK 0x5 on tcp/80
		entry("tcp", "CLOSE_WAIT", 0, 0, lo, lo, 8081, 80),             // DNAT 8081 -> 80: the reply comes from 80
		entry("tcp", "SYN_SENT", 5, 0, lo, nobody, 80, 80),             // an unanswered SYN
		entry("udp", "", 0, 7, a("127.0.0.1"), a("127.0.0.1"), 53, 53), // CT --zone 7
		entry("icmp", "", 0, 0, lo, lo, 0, 0),                          // no ports
		entry("2", "", 0, 0, anyA, a("224.0.0.22"), 0, 0),              // IGMP, "unknown 2"
	}
	// The client's port and the timeouts change with every recording:
	// each entry's own port comes back in its reply, and the timeout is
	// within the protocol's (tcp established 5 days, IGMP 600 s).
	var entries []topology.Conntrack
	for _, c := range notVXLAN(got) {
		if c.Orig.SPort != c.Reply.DPort || c.Timeout == 0 || c.Timeout > 432000 {
			t.Errorf("entry %+v: ports or timeout", c)
		}
		c.Orig.SPort, c.Reply.DPort, c.Timeout = 0, 0, 0
		entries = append(entries, c)
	}
	opts := cmp.Options{cmpopts.EquateComparable(netip.Addr{}), cmpopts.SortSlices(ctLess)}
	if d := cmp.Diff(want, entries, opts); d != "" {
		t.Errorf("entries (-want +got):\n%s", d)
	}
	if n := len(got) - len(entries); n < 5 {
		t.Errorf("%d VXLAN entries, want those record-state.sh's traffic made", n)
	}
	// -o extended, taken right after: the same entries but the timeouts.
	ext := parseClean(t, variant("extended-conntrack.txt"), Conntrack)
	noTimeout := cmpopts.IgnoreFields(topology.Conntrack{}, "Timeout")
	if d := cmp.Diff(notVXLAN(got), notVXLAN(ext), opts, noTimeout); d != "" {
		t.Errorf("-o extended (-plain +extended):\n%s", d)
	}
}

func notVXLAN(cs []topology.Conntrack) []topology.Conntrack {
	var out []topology.Conntrack
	for _, c := range cs {
		if !(c.Proto == "udp" && c.Orig.DPort == 4789) {
			out = append(out, c)
		}
	}
	return out
}

func ctLess(x, y topology.Conntrack) bool {
	kx := fmt.Sprint(x.Proto, x.Orig.Dst, x.Orig.DPort, x.Mark, x.Orig.SPort)
	ky := fmt.Sprint(y.Proto, y.Orig.Dst, y.Orig.DPort, y.Mark, y.Orig.SPort)
	return kx < ky
}
