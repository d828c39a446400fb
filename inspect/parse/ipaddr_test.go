package parse

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

func parseAddrFile(t *testing.T, path string) []*topology.Link {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	links, err := IPAddr(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return links
}

// rawLink is what a plain reading of `ip addr` says about a link.
type rawLink struct {
	index       string
	name, at    string
	addrs       []string
	linkNetnsid string
}

func scanAddr(data string) []*rawLink {
	var out []*rawLink
	for _, l := range strings.Split(data, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case l[0] != ' ':
			idx, rest, _ := strings.Cut(l, ": ")
			name, _, _ := strings.Cut(rest, ": ")
			r := &rawLink{index: idx, name: name}
			if i := strings.LastIndex(name, "@"); i >= 0 {
				r.name, r.at = name[:i], name[i+1:]
			}
			out = append(out, r)
		case f[0] == "inet" || f[0] == "inet6":
			out[len(out)-1].addrs = append(out[len(out)-1].addrs, f[1])
		case strings.HasPrefix(f[0], "link/"):
			if i := slices.Index(f, "link-netnsid"); i >= 0 {
				out[len(out)-1].linkNetnsid = f[i+1]
			}
		}
	}
	return out
}

// TestIPAddrFixtures checks every recorded `ip [-d] addr` against a plain
// reading of it, and `ip addr` against `ip -d addr` of the same namespace.
func TestIPAddrFixtures(t *testing.T) {
	for _, path := range fixtures(t, "ipaddr") {
		t.Run(path, func(t *testing.T) {
			data := readFixture(t, path)
			links := parseAddrFile(t, path)
			raw := scanAddr(data)
			if len(links) != len(raw) {
				t.Fatalf("%d links, want %d", len(links), len(raw))
			}
			detailed := strings.Contains(data, " promiscuity ")
			for i, r := range raw {
				l := links[i]
				if idx, _ := atoi(r.index); l.Index != idx || l.Name != r.name || l.MTU == 0 {
					t.Errorf("link %d: %d %s mtu %d, want %s %s", i, l.Index, l.Name, l.MTU, r.index, r.name)
				}
				var addrs []string
				for _, a := range l.Addrs {
					addrs = append(addrs, a.String())
				}
				if !slices.Equal(addrs, r.addrs) {
					t.Errorf("%s: addrs %v, want %v", l.Name, addrs, r.addrs)
				}
				if !detailed {
					// Plain ip addr prints no kinds: only loopback is
					// certain; NAME@ifN may be a veth or a VXLAN device
					// moved in from another namespace (vxlan0@if7), so
					// the kind stays unknown and topology infers it.
					want := ""
					if r.name == "lo" {
						want = "loopback"
					}
					if l.Kind != want {
						t.Errorf("%s: kind %q, want %q (plain ip addr)", l.Name, l.Kind, want)
					}
				}
				if (l.Kind == "veth" || !detailed) && strings.HasPrefix(r.at, "if") {
					wantID := -1
					if r.linkNetnsid != "" {
						wantID, _ = atoi(r.linkNetnsid)
					}
					if strings.Contains(data, l.Name+"@"+r.at) && strings.Contains(data, "link-netns ") && r.linkNetnsid == "" {
						wantID = l.Peer.NetnsID // the named form: see TestIPAddrVariants
					}
					if n, _ := atoi(r.at[2:]); l.Peer == nil || l.Peer.Index != n || l.Peer.NetnsID != wantID {
						t.Errorf("%s: peer %+v, want index %s netnsid %d", l.Name, l.Peer, r.at, wantID)
					}
				}
			}
			if detailed {
				return
			}
			// The same namespace's `ip -d addr` agrees on everything
			// but the kinds.
			dpath := strings.Replace(path, "ip-addr.txt", "ip-d-addr.txt", 1)
			if _, err := os.Stat(dpath); err != nil {
				return
			}
			dl := parseAddrFile(t, dpath)
			ign := cmpopts.IgnoreFields(topology.Link{}, "Kind", "Peer", "VXLAN")
			if d := cmp.Diff(links, dl, ign, cmpopts.EquateComparable(netip.Prefix{})); d != "" {
				t.Errorf("ip addr and ip -d addr disagree (-plain +detailed):\n%s", d)
			}
			for i, l := range dl {
				// Plain ip addr gives a peer to NAME@ifN only (see IPAddr).
				if l.Kind == "veth" && l.Peer.NetnsID != -1 && (links[i].Peer == nil) != (dl[i].Peer == nil) {
					t.Errorf("%s: peer %+v with -d, %+v without", l.Name, dl[i].Peer, links[i].Peer)
				}
			}
		})
	}
}

// TestDockerShapedWorld reads all five recorded namespaces and checks the
// wiring record.sh built: each veth's peer index and netnsid point at
// exactly one veth in another namespace that points back, and the pairs are
// the ones made; plus kinds, masters, MTUs and the VXLAN attributes.
func TestDockerShapedWorld(t *testing.T) {
	dir := cmdout("docker-shaped", "netns")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	world := map[string][]*topology.Link{}
	for _, e := range ents {
		world[e.Name()] = parseAddrFile(t, filepath.Join(dir, e.Name(), "ip-d-addr.txt"))
	}
	if len(world) != 5 {
		t.Fatalf("%d namespaces", len(world))
	}
	find := func(ns, name string) *topology.Link {
		for _, l := range world[ns] {
			if l.Name == name {
				return l
			}
		}
		t.Fatalf("%s: no link %s", ns, name)
		return nil
	}
	peerOf := func(ns string, x *topology.Link) (string, *topology.Link) {
		var found []string
		var y *topology.Link
		for other, links := range world {
			if other == ns {
				continue
			}
			for _, l := range links {
				if l.Index == x.Peer.Index && l.Peer != nil && l.Peer.Index == x.Index {
					found = append(found, other)
					y = l
				}
			}
		}
		if len(found) != 1 {
			t.Errorf("%s/%s: peer candidates %v", ns, x.Name, found)
			return "", nil
		}
		return found[0], y
	}
	pairs := map[string]string{}
	for ns, links := range world {
		for _, l := range links {
			if l.Kind != "veth" || ns == "host" && l.Name == "eth0" {
				continue // host eth0's peer is in the client netns, not recorded
			}
			if l.Peer == nil || l.Peer.NetnsID < 0 {
				t.Errorf("%s/%s: peer %+v", ns, l.Name, l.Peer)
				continue
			}
			if other, y := peerOf(ns, l); y != nil {
				pairs[ns+"/"+l.Name] = other + "/" + y.Name
			}
		}
	}
	want := map[string]string{
		"host/veth5e1a2b3":   "ingress_sbox/eth1",
		"host/vethc4d5e6f":   "7f3c9a1e5b2d/eth1",
		"host/veth7a8b9c0":   "0a9d8e7c6b5f/eth1",
		"1-x2kd3mq9zt/veth0": "ingress_sbox/eth0",
		"1-x2kd3mq9zt/veth1": "7f3c9a1e5b2d/eth0",
		"1-x2kd3mq9zt/veth2": "0a9d8e7c6b5f/eth0",
		"ingress_sbox/eth1":  "host/veth5e1a2b3",
		"ingress_sbox/eth0":  "1-x2kd3mq9zt/veth0",
		"7f3c9a1e5b2d/eth1":  "host/vethc4d5e6f",
		"7f3c9a1e5b2d/eth0":  "1-x2kd3mq9zt/veth1",
		"0a9d8e7c6b5f/eth1":  "host/veth7a8b9c0",
		"0a9d8e7c6b5f/eth0":  "1-x2kd3mq9zt/veth2",
	}
	if d := cmp.Diff(want, pairs); d != "" {
		t.Errorf("veth pairs (-want +got):\n%s", d)
	}

	if l := find("host", "docker_gwbridge"); l.Kind != "bridge" || !l.Up || !slices.Contains(l.Addrs, netip.MustParsePrefix("172.18.0.1/16")) {
		t.Errorf("%+v", l)
	}
	if l := find("host", "veth5e1a2b3"); l.Master != "docker_gwbridge" || l.MTU != 1500 {
		t.Errorf("%+v", l)
	}
	if l := find("ingress_sbox", "eth0"); l.MTU != 1450 || !slices.Contains(l.Addrs, netip.MustParsePrefix("10.255.0.2/16")) {
		t.Errorf("%+v", l)
	}
	vx := find("1-x2kd3mq9zt", "vxlan0")
	wantVX := &topology.VXLANInfo{ID: 4096, Port: 4789, Local: netip.MustParseAddr("192.168.77.10"), Learning: false, Proxy: true}
	if vx.Kind != "vxlan" || vx.Master != "br0" || vx.MTU != 1450 || vx.Peer != nil || !cmp.Equal(vx.VXLAN, wantVX) {
		t.Errorf("vxlan0 %+v vxlan %+v", vx, vx.VXLAN)
	}
	if l := find("1-x2kd3mq9zt", "br0"); l.Kind != "bridge" || l.MTU != 1450 {
		t.Errorf("%+v", l)
	}
	if l := find("host", "lo"); l.Kind != "loopback" || !l.Up || l.MAC.String() != "00:00:00:00:00:00" {
		t.Errorf("%+v", l)
	}
}

// TestIPAddrVariants: named namespaces (link-netns NAME), a veth pair in
// one namespace, macvlan, ifb, tun, down links and extra addresses.
func TestIPAddrVariants(t *testing.T) {
	prefix := strings.TrimSpace(readFixture(t, cmdout("variants", "PREFIX")))
	for _, name := range []string{"named-a-ip-d-addr.txt", "named-a-ip-addr.txt"} {
		detailed := strings.Contains(name, "-d-")
		links := parseAddrFile(t, cmdout("variants", name))
		by := map[string]*topology.Link{}
		for _, l := range links {
			by[l.Name] = l
		}
		v0 := by["v0"]
		if v0 == nil || v0.Peer == nil || v0.Peer.NetnsID != NetnsIDNamed || v0.Peer.Netns != prefix+"b" || v0.Peer.Index != 2 {
			t.Errorf("%s: v0 %+v peer %+v", name, v0, v0.Peer)
		}
		if detailed {
			v2, v3 := by["v2"], by["v3"]
			if v2.Peer == nil || v2.Peer.Index != v3.Index || v2.Peer.NetnsID != -1 || v2.Peer.Ifname != "v3" ||
				v3.Peer == nil || v3.Peer.Index != v2.Index || v3.Peer.Ifname != "v2" {
				t.Errorf("same-netns pair: v2 %+v v3 %+v", v2.Peer, v3.Peer)
			}
			for n, kind := range map[string]string{"mv0": "macvlan", "ifb0": "ifb", "tun0": "tun", "br0": "bridge", "v2": "veth"} {
				if by[n].Kind != kind {
					t.Errorf("%s kind %q, want %q", n, by[n].Kind, kind)
				}
			}
			if by["mv0"].Peer != nil {
				t.Errorf("macvlan got a peer: %+v", by["mv0"].Peer)
			}
		} else {
			for _, n := range []string{"v2", "v3", "mv0", "ifb0", "tun0", "br0"} {
				if by[n].Kind != "" || by[n].Peer != nil {
					t.Errorf("plain ip addr: %s kind %q peer %+v, want unknown", n, by[n].Kind, by[n].Peer)
				}
			}
		}
		if by["v3"].Up || !by["v2"].Up || by["tun0"].MAC.IsValid() || !by["ifb0"].MAC.IsValid() {
			t.Errorf("flags/MACs: v3 %+v v2 %+v tun0 %+v ifb0 %+v", by["v3"], by["v2"], by["tun0"], by["ifb0"])
		}
		want := []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("fd00:9::1/64")}
		if got := by["br0"].Addrs; len(got) < 3 || !slices.Equal(got[:3], want) {
			t.Errorf("br0 addrs %v", got)
		}
	}
}

func TestIPAddrShapes(t *testing.T) {
	in := "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\r\n" +
		"    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\r\n" +
		"2: enp0s3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel master br-x state UP group default qlen 1000\n" +
		"    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff promiscuity 1 minmtu 68 maxmtu 65535\n" +
		"    bridge_slave state forwarding priority 32 cost 4\n" +
		"    altname ens3\n" +
		"    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic enp0s3\n" +
		"       valid_lft 86000sec preferred_lft 86000sec\n" +
		"3: ip6tnl0@NONE: <NOARP> mtu 1452 qdisc noop state DOWN group default qlen 1000\n" +
		"    link/tunnel6 :: brd :: permaddr 1a2b::\n" +
		"4: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN group default qlen 1000\n" +
		"    link/none \n" +
		"    inet 10.8.0.1 peer 10.8.0.2/32 scope global wg0\n" +
		"    inet6 fd00::1 peer fd00::2/128 scope global\n" +
		"5: eth0.10@eth0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default qlen 1000\n" +
		"    link/ether 52:54:00:12:34:57 brd ff:ff:ff:ff:ff:ff\n" +
		"6: a@b@if9: <BROADCAST,MULTICAST,UP> mtu 9000 qdisc noop state DOWN\n" +
		"    link/ether 52:54:00:12:34:58 brd ff:ff:ff:ff:ff:ff\n"
	links, err := IPAddr("t", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []*topology.Link{
		{Index: 1, Name: "lo", Kind: "loopback", MTU: 65536, MAC: topology.MustParseMAC("00:00:00:00:00:00"), Up: true},
		{Index: 2, Name: "enp0s3", Kind: "device", MTU: 1500, MAC: topology.MustParseMAC("52:54:00:12:34:56"), Up: true, Master: "br-x",
			Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.2.15/24")}},
		{Index: 3, Name: "ip6tnl0", MTU: 1452},
		{Index: 4, Name: "wg0", MTU: 1420, Up: true,
			Addrs: []netip.Prefix{netip.MustParsePrefix("10.8.0.1/32"), netip.MustParsePrefix("fd00::1/128")}},
		{Index: 5, Name: "eth0.10", MTU: 1500, MAC: topology.MustParseMAC("52:54:00:12:34:57")},
		{Index: 6, Name: "a@b", MTU: 9000, MAC: topology.MustParseMAC("52:54:00:12:34:58"), Up: true, Peer: &topology.Peer{Index: 9, NetnsID: -1}},
	}
	if d := cmp.Diff(want, links, cmpopts.EquateComparable(netip.Prefix{})); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

// TestIPAddrOneKind: only the kind line right after a link's first link/
// line is its kind; VXLAN attributes belong to a link whose kind is vxlan.
func TestIPAddrOneKind(t *testing.T) {
	in := "3: vxlan0: <UP> mtu 1450\n" +
		"    link/ether 02:42:0a:00:00:01 brd ff:ff:ff:ff:ff:ff promiscuity 1\n" +
		"    vxlan id 4096 dstport 4789\n" +
		"    link/ether 02:42:0a:00:00:02 brd ff:ff:ff:ff:ff:ff\n" +
		"    bridge foo\n"
	links, err := IPAddr("t", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if l := links[0]; l.Kind != "vxlan" || l.VXLAN == nil || l.VXLAN.ID != 4096 {
		t.Errorf("kind %q vxlan %+v, want the first kind line's vxlan 4096", l.Kind, l.VXLAN)
	}
}

func TestIPAddrErrors(t *testing.T) {
	hdr := "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue\n"
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"indented first", "    link/ether 00:11:22:33:44:55\n", 1, "before the first link"},
		{"iptables", "*filter\n", 1, "not ip addr output"},
		{"index 0", "0: lo: <UP> mtu 1\n", 1, "not ip addr output"},
		{"no name", "1: \n", 1, "no name"},
		{"no flags", "1: lo: mtu 65536\n", 1, "no <FLAGS>"},
		{"no mtu", "1: lo: <UP> qdisc noqueue\n", 1, "no mtu"},
		{"truncated header", hdr + "2: eth0@if3: <BROADCAST,MULTICAST,UP> mt", 2, "no mtu"},
		{"bad mtu", "1: lo: <UP> mtu x\n", 1, "bad mtu"},
		{"dup index", hdr + "1: eth0: <UP> mtu 1500\n", 2, "index 1 appears twice"},
		{"dup name", hdr + "2: lo: <UP> mtu 1500\n", 2, "lo appears twice"},
		{"bad addr", hdr + "    inet 10.0.0.300/24 scope global lo\n", 2, "bad address"},
		{"bad local", hdr + "    inet 10.0.0.x peer 10.0.0.2/32\n", 2, "bad address"},
		{"family", hdr + "    inet6 10.0.0.1/24 scope global lo\n", 2, "wrong family"},
		{"no addr", hdr + "    inet\n", 2, "without an address"},
		{"bad netnsid", hdr + "    link/ether 00:11:22:33:44:55 link-netnsid x\n", 2, "bad link-netnsid"},
		{"bad vxlan", hdr + "    link/ether 00:11:22:33:44:55 promiscuity 0\n    vxlan id x\n", 3, "bad vxlan id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			links, err := IPAddr("ns/ip-addr.txt", strings.NewReader(tt.in))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %+v, %v; want an *Error", links, err)
			}
			if pe.File != "ns/ip-addr.txt" || pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("got %q (line %d), want line %d and %q", err, pe.Line, tt.line, tt.msg)
			}
		})
	}
}

// TestIPAddrOtherFormats: `ip -br addr` and `ip -o addr` (recorded) lose the
// index, MTU and master the model needs: the error names the format and
// the command to use instead, at line 1, not a puzzling "no <FLAGS>".
func TestIPAddrOtherFormats(t *testing.T) {
	for f, want := range map[string]string{"ip-br-addr.txt": "ip -br addr", "ip-o-addr.txt": "ip -o"} {
		path := cmdout("variants", f)
		_, err := IPAddr(path, strings.NewReader(readFixture(t, path)))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), f+":1:") || !strings.Contains(err.Error(), "collect `ip addr`") {
			t.Errorf("%s: %v", f, err)
		}
	}
}
