package parse

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

// meshState is node0 of the mesh record-state.sh recorded, one namespace
// per folder. Names are read from the files (every recording makes new
// ones): the overlay is 1-*, the tasks are the 12-hex folders.
type meshState struct {
	t              *testing.T
	overlay, tasks []string
}

func loadMeshState(t *testing.T) *meshState {
	ents, err := os.ReadDir(cmdout("mesh-state", "node0", "netns"))
	if err != nil {
		t.Fatal(err)
	}
	m := &meshState{t: t}
	for _, e := range ents {
		switch n := e.Name(); {
		case strings.HasPrefix(n, "1-"):
			m.overlay = append(m.overlay, n)
		case len(n) == 12 && strings.Trim(n, "0123456789abcdef") == "":
			m.tasks = append(m.tasks, n)
		}
	}
	if len(m.overlay) != 1 || len(m.tasks) != 2 {
		t.Fatalf("mesh-state: overlays %v, tasks %v: want one and two", m.overlay, m.tasks)
	}
	return m
}

func (m *meshState) file(netns, name string) string {
	return cmdout("mesh-state", "node0", "netns", netns, name)
}

// The mesh's fixed addressing (mesh/netspec.go): node0 and node1 on the
// LAN, the sandbox on docker_gwbridge and on the ingress overlay.
var (
	node0, node1 = netip.MustParseAddr("192.168.77.10"), netip.MustParseAddr("192.168.77.11")
	sboxGW       = netip.MustParseAddr("172.18.0.2")
	sboxIngress  = netip.MustParseAddr("10.0.0.2")
	ingressNet   = netip.MustParsePrefix("10.0.0.0/24")
)

// TestMeshStateOverlay: the overlay reaches node1's tasks through VXLAN:
// a PERMANENT neighbour on vxlan0 per remote task, and an FDB entry for
// its MAC whose dst is node1.
func TestMeshStateOverlay(t *testing.T) {
	m := loadMeshState(t)
	ovl := m.overlay[0]
	neigh := parseClean(t, m.file(ovl, "ip-neigh.txt"), IPNeigh)
	fdb := parseClean(t, m.file(ovl, "bridge-fdb.txt"), BridgeFDB)
	vtep := map[topology.MAC]netip.Addr{}
	for _, e := range fdb {
		if e.Dev == "vxlan0" && e.Dst.IsValid() {
			vtep[e.MAC] = e.Dst
		}
	}
	remote := 0
	for _, n := range neigh {
		if n.Dev != "vxlan0" {
			continue
		}
		remote++
		if n.State != "permanent" || vtep[n.MAC] != node1 {
			t.Errorf("remote task %s (%s, %s): VTEP %q, want %s", n.IP, n.MAC, n.State, vtep[n.MAC], node1)
		}
	}
	if remote < 2 {
		t.Errorf("%d remote neighbours on vxlan0, want node1's tasks", remote)
	}
}

// TestMeshStateNAT: the host DNATs the published port to the sandbox, the
// sandbox balances to a task and SNATs to its own ingress address; one
// connection was open while recording.
func TestMeshStateNAT(t *testing.T) {
	m := loadMeshState(t)
	host := parseClean(t, m.file("host", "conntrack.txt"), Conntrack)
	sbox := parseClean(t, m.file("ingress_sbox", "conntrack.txt"), Conntrack)
	count := func(cs []topology.Conntrack, ok func(c topology.Conntrack) bool) int {
		n := 0
		for _, c := range cs {
			if ok(c) {
				n++
			}
		}
		return n
	}
	dnat := count(host, func(c topology.Conntrack) bool {
		return c.Orig.Dst == node0 && c.Orig.DPort == 8080 && c.Reply.Src == sboxGW && c.Reply.SPort == 8080
	})
	balanced := count(sbox, func(c topology.Conntrack) bool {
		return c.Orig.Dst == sboxGW && ingressNet.Contains(c.Reply.Src) && c.Reply.Src != sboxIngress && c.Reply.Dst == sboxIngress
	})
	udp := count(sbox, func(c topology.Conntrack) bool { return c.Proto == "udp" && c.Orig.DPort == 5353 })
	open := count(sbox, func(c topology.Conntrack) bool { return c.State == "ESTABLISHED" })
	if dnat < 4 || balanced < 6 || udp < 2 || open != 1 {
		t.Errorf("host DNAT entries %d, sandbox balanced+SNATed %d (udp %d), established %d", dnat, balanced, udp, open)
	}
}

// TestMeshStateNamespaces: sockets, routes and knobs of each namespace.
func TestMeshStateNamespaces(t *testing.T) {
	m := loadMeshState(t)
	got := map[string]bool{}
	for _, ns := range m.tasks {
		for _, s := range parseClean(t, m.file(ns, "ss.txt"), SS) {
			got[s.Proto+" "+netip.AddrPortFrom(s.Addr, uint16(s.Port)).String()] = true
		}
	}
	if !got["tcp 0.0.0.0:80"] || !got["udp 0.0.0.0:53"] {
		t.Errorf("task sockets %v, want web's tcp/80 and dns's udp/53", got)
	}
	if h := parseClean(t, m.file("host", "ss.txt"), SS); len(h) != 1 || h[0].Port != 4789 {
		t.Errorf("host sockets %v, want the VXLAN device's udp/4789", h)
	}
	for _, ns := range append([]string{"ingress_sbox"}, m.tasks...) {
		rs := parseClean(t, m.file(ns, "ip-route.txt"), IPRoute)
		if len(rs) == 0 || rs[0] != (topology.Route{Dst: topology.DefaultRoute, Gateway: netip.MustParseAddr("172.18.0.1"), Dev: "eth1"}) {
			t.Errorf("%s routes %+v, want default via docker_gwbridge first", ns, rs)
		}
	}
	for ns, fwd := range map[string]string{"host": "1", "ingress_sbox": "1", m.overlay[0]: "0"} {
		s := parseClean(t, m.file(ns, "sysctl.txt"), Sysctl)
		if s["net.ipv4.ip_forward"] != fwd || s["net.ipv4.conf.lo.rp_filter"] == "" || s["net.ipv4.conf.all.rp_filter"] == "" {
			t.Errorf("%s sysctls %v", ns, s)
		}
	}
}
