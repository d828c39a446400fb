package mesh

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

func testPlan(t *testing.T, nodes int, lb string, specs ...string) *Plan {
	t.Helper()
	c := Config{Name: "p1", Nodes: nodes, LB: lb}
	for _, s := range specs {
		sp, err := ParseService(s)
		if err != nil {
			t.Fatal(err)
		}
		c.Services = append(c.Services, sp)
	}
	p, err := NewPlan(c, lb, "/run/meshtrace")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlanLayout(t *testing.T) {
	p := testPlan(t, 2, LBIptables, "web:8080:80x3", "dns:5353:53/udpx2")
	if !regexp.MustCompile(`^[0-9a-z]{10}$`).MatchString(p.OverlayID) {
		t.Errorf("overlay id %q is not 10 base-36 chars", p.OverlayID)
	}
	wantNodes := []struct{ name, ip, sbox string }{{"node0", "192.168.77.10", "10.0.0.2"}, {"node1", "192.168.77.11", "10.0.0.3"}}
	for i, w := range wantNodes {
		n := p.Nodes[i]
		if n.Name != w.name || n.IP.String() != w.ip || n.SandboxIP.String() != w.sbox {
			t.Errorf("node %d = %s %s %s, want %v", i, n.Name, n.IP, n.SandboxIP, w)
		}
	}
	// VIPs after the sandboxes, then tasks; replicas round robin per service.
	if p.Services[0].VIP.String() != "10.0.0.4" || p.Services[1].VIP.String() != "10.0.0.5" {
		t.Errorf("VIPs %s %s", p.Services[0].VIP, p.Services[1].VIP)
	}
	if p.Services[0].FWMark != 0x100 || p.Services[1].FWMark != 0x101 {
		t.Errorf("fwmarks %#x %#x", p.Services[0].FWMark, p.Services[1].FWMark)
	}
	want := []struct {
		name, node, ip, gw string
	}{
		{"web.1", "node0", "10.0.0.6", "172.18.0.3"},
		{"web.2", "node1", "10.0.0.7", "172.18.0.3"},
		{"web.3", "node0", "10.0.0.8", "172.18.0.4"},
		{"dns.1", "node0", "10.0.0.9", "172.18.0.5"},
		{"dns.2", "node1", "10.0.0.10", "172.18.0.4"},
	}
	ts := p.Tasks()
	if len(ts) != len(want) {
		t.Fatalf("%d tasks, want %d", len(ts), len(want))
	}
	ids := map[string]bool{}
	for i, w := range want {
		tk := ts[i]
		if tk.Name != w.name || p.Nodes[tk.Node].Name != w.node || tk.IngressIP.String() != w.ip || tk.GWIP.String() != w.gw {
			t.Errorf("task %d = %s %s %s %s, want %v", i, tk.Name, p.Nodes[tk.Node].Name, tk.IngressIP, tk.GWIP, w)
		}
		if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(tk.NetnsID) || ids[tk.NetnsID] {
			t.Errorf("task %s netns id %q: not 12 hex or not unique", tk.Name, tk.NetnsID)
		}
		ids[tk.NetnsID] = true
	}
	if got := p.TaskPath(ts[1]); got != "/run/meshtrace/p1/node1/netns/"+ts[1].NetnsID {
		t.Errorf("task path %s", got)
	}
	if got := p.OverlayPath(0); got != "/run/meshtrace/p1/node0/netns/1-"+p.OverlayID {
		t.Errorf("overlay path %s", got)
	}
}

func TestPlanDeterministic(t *testing.T) {
	a := testPlan(t, 3, LBIptables, "web:8080:80x7")
	b := testPlan(t, 3, LBIptables, "web:8080:80x7")
	for i, s := range a.Netns() {
		o := b.Netns()[i]
		if s.Path != o.Path || s.Rules != o.Rules || len(s.Veths) != len(o.Veths) {
			t.Fatalf("netns %s differs between two plans of the same config", s.Key)
		}
		for j := range s.Veths {
			if s.Veths[j] != o.Veths[j] {
				t.Errorf("%s veth %d: %+v vs %+v", s.Key, j, s.Veths[j], o.Veths[j])
			}
		}
	}
}

func TestPlanTooManyReplicas(t *testing.T) {
	c := Config{Name: "big", Nodes: 2, LB: LBIptables, Services: []ServiceSpec{{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: 251}}}
	_, err := NewPlan(c, LBIptables, "/run/meshtrace")
	if err == nil || !strings.Contains(err.Error(), "need 254 addresses") {
		t.Fatalf("NewPlan with 251 replicas = %v, want an address exhaustion error", err)
	}
	c.Services[0].Replicas = 250 // 2 sandboxes + 1 VIP + 250 tasks = .2 to .254
	p, err := NewPlan(c, LBIptables, "/run/meshtrace")
	if err != nil {
		t.Fatalf("250 replicas should fit: %v", err)
	}
	if last := p.Services[0].Tasks[249].IngressIP.String(); last != "10.0.0.254" {
		t.Errorf("last task at %s, want 10.0.0.254", last)
	}
}

// TestNetnsSpecs checks the invariants that keep the mesh inside its own
// namespaces and shaped like Docker's.
func TestNetnsSpecs(t *testing.T) {
	p := testPlan(t, 3, LBIptables, "web:8080:80x50", "dns:5353:53/udpx4")
	specs := p.Netns()
	paths := map[string]*NetnsSpec{}
	for _, s := range specs {
		if !strings.HasPrefix(s.Path, p.Dir+"/") {
			t.Errorf("%s: path %s outside %s", s.Key, s.Path, p.Dir)
		}
		if paths[s.Path] != nil {
			t.Errorf("%s: path %s used twice", s.Key, s.Path)
		}
		paths[s.Path] = s
	}
	if got, want := len(specs), 2+3*3+54; got != want {
		t.Errorf("%d namespaces, want %d", got, want)
	}
	// Every link name fits IFNAMSIZ and is unique in its namespace.
	names := map[string]map[string]bool{}
	add := func(path, name string) {
		if len(name) == 0 || len(name) > 15 {
			t.Errorf("link name %q in %s: want 1-15 bytes", name, path)
		}
		if names[path] == nil {
			names[path] = map[string]bool{"lo": true}
		}
		if names[path][name] {
			t.Errorf("link name %q twice in %s", name, path)
		}
		names[path][name] = true
	}
	macs := map[string]string{}
	for _, s := range specs {
		for _, b := range s.Bridges {
			add(s.Path, b.Name)
		}
		if v := s.VXLAN; v != nil {
			add(s.Path, v.Name)
			if len(v.TmpName) > 15 || paths[v.CreateIn] == nil || paths[v.CreateIn].Role != "host" {
				t.Errorf("%s: vxlan tmp name %q / created in %q", s.Key, v.TmpName, v.CreateIn)
			}
			if v.VNI != 4096 || v.Port != 4789 || v.MTU != 1450 || !v.Learning || !v.Proxy || !v.L2Miss || !v.L3Miss {
				t.Errorf("%s: vxlan %+v", s.Key, v)
			}
		}
		for _, v := range s.Veths {
			add(s.Path, v.Name)
			add(v.PeerPath, v.PeerName)
			if paths[v.PeerPath] == nil {
				t.Errorf("%s: veth %s peer in unknown netns %s", s.Key, v.Name, v.PeerPath)
			}
			if other, dup := macs[v.MAC]; dup && v.MAC != "" && !strings.HasPrefix(v.MAC, "02:42:ac:12") {
				t.Errorf("MAC %s on %s and %s", v.MAC, s.Key, other)
			}
			macs[v.MAC] = s.Key
		}
	}
	// Overlays: FDB and neighbour entries exactly for the remote endpoints.
	eps := len(p.endpoints())
	for ni := range p.Nodes {
		ov := paths[p.OverlayPath(ni)]
		local := 0
		for _, e := range p.endpoints() {
			if e.node == ni {
				local++
			}
		}
		if len(ov.FDB) != eps-local || len(ov.Neighs) != eps-local {
			t.Errorf("%s: %d fdb, %d neighbours, want %d remote endpoints", ov.Key, len(ov.FDB), len(ov.Neighs), eps-local)
		}
		for _, f := range ov.FDB {
			if f.Dst == p.Nodes[ni].IP || !addrplan.LANSubnet.Contains(f.Dst) || f.Dev != "vxlan0" {
				t.Errorf("%s: fdb %+v does not point at another node", ov.Key, f)
			}
		}
		// One veth port on br0 per local endpoint.
		ports := 0
		for _, s := range specs {
			for _, v := range s.Veths {
				if v.PeerPath == ov.Path && v.PeerMaster == "br0" && v.PeerMTU == 1450 && v.MTU == 1450 {
					ports++
				}
			}
		}
		if ports != local {
			t.Errorf("%s: %d br0 ports, want %d", ov.Key, ports, local)
		}
		for i := range local {
			if !names[ov.Path][fmt.Sprintf("veth%d", i)] {
				t.Errorf("%s: no port veth%d (Docker names overlay ports veth0, veth1, ...)", ov.Key, i)
			}
		}
	}
	// Sandboxes balance over every task of the service, local or remote.
	sb := paths[p.SandboxPath(1)]
	if n := strings.Count(sb.Rules, "-m mark --mark 0x100"); n != 2*50 {
		t.Errorf("sandbox: %d emulation rules for web, want 100 (PREROUTING+OUTPUT x 50)", n)
	}
	if !strings.Contains(sb.Rules, "-j SNAT --to-source "+p.Nodes[1].SandboxIP.String()) {
		t.Errorf("sandbox rules lack the SNAT to its own ingress address:\n%s", sb.Rules)
	}
	if len(sb.IPVS) != 0 {
		t.Errorf("iptables LB programs IPVS: %+v", sb.IPVS)
	}
	host := paths[p.HostPath(0)]
	if !strings.Contains(host.Rules, "--dport 5353 -j DNAT --to-destination 172.18.0.2:5353") {
		t.Errorf("host rules lack the udp DNAT:\n%s", host.Rules)
	}
}

func TestNetnsSpecsIPVS(t *testing.T) {
	p := testPlan(t, 2, LBIPVS, "web:8080:80x3")
	for _, s := range p.Netns() {
		if s.Role != "ingress-sandbox" {
			continue
		}
		if len(s.IPVS) != 1 || s.IPVS[0].FWMark != 0x100 || s.IPVS[0].Scheduler != "rr" || len(s.IPVS[0].Dests) != 3 {
			t.Errorf("%s: ipvs %+v", s.Key, s.IPVS)
		}
		if !strings.Contains(s.Rules, "-m ipvs --ipvs -j SNAT") || strings.Contains(s.Rules, "statistic") {
			t.Errorf("%s: rules are not dockerd's IPVS rules:\n%s", s.Key, s.Rules)
		}
		found := false
		for _, sc := range s.Sysctls {
			found = found || (sc.Key == "net/ipv4/vs/conntrack" && sc.Value == "1")
		}
		if !found {
			t.Errorf("%s: no net.ipv4.vs.conntrack=1", s.Key)
		}
	}
}

func TestStateFromPlan(t *testing.T) {
	p := testPlan(t, 2, LBIptables, "web:8080:80x2")
	st := p.State()
	if st.Name != "p1" || st.LB != LBIptables || len(st.Nodes) != 2 || st.Services[0].Tasks[1].Node != "node1" {
		t.Fatalf("state %+v", st)
	}
	for _, tc := range []struct{ place, want string }{
		{"client", "/run/meshtrace/p1/client"},
		{"lan", "/run/meshtrace/p1/lan"},
		{"node1", "/run/meshtrace/p1/node1/host"},
		{"node0/ingress_sbox", "/run/meshtrace/p1/node0/netns/ingress_sbox"},
		{"web.2", p.TaskPath(p.Services[0].Tasks[1])},
	} {
		got, err := st.NetnsPath(tc.place)
		if err != nil || got != tc.want {
			t.Errorf("NetnsPath(%q) = %q, %v; want %q", tc.place, got, err, tc.want)
		}
	}
	for _, bad := range []string{"node7", "node0/../x", "node0/", "web.9", ""} {
		if got, err := st.NetnsPath(bad); err == nil {
			t.Errorf("NetnsPath(%q) = %q, want an error", bad, got)
		}
	}
	if filepath.Dir(st.Nodes[0].NetnsDir) != filepath.Join(p.Dir, "node0") {
		t.Errorf("netns dir %s", st.Nodes[0].NetnsDir)
	}
}

// Every task gets its embedded DNS server's rules with its own ports; a
// dnsrr service has no VIP, no mark, no published port and no ingress
// rules anywhere, but its tasks are endpoints of the overlay.
func TestPlanDNS(t *testing.T) {
	p := testPlan(t, 2, LBIptables, "web:8080:80x2", "db:dnsrr:5432x2")
	db := p.Services[1]
	if db.VIP.IsValid() || db.FWMark != 0 || p.Services[0].FWMark != 0x100 {
		t.Fatalf("db: vip %s mark %#x; web mark %#x", db.VIP, db.FWMark, p.Services[0].FWMark)
	}
	specs := map[string]*NetnsSpec{}
	for _, s := range p.Netns() {
		specs[s.Path] = s
	}
	ports := map[int]string{}
	for _, s := range p.Services {
		for _, tk := range s.Tasks {
			rules := specs[p.TaskPath(tk)].Rules
			for _, r := range tk.Resolver.Rules() {
				if !strings.Contains(rules, r+"\n") {
					t.Errorf("%s lacks %q:\n%s", tk.Name, r, rules)
				}
			}
			for _, port := range []int{tk.Resolver.TCPPort, tk.Resolver.UDPPort} {
				if other, dup := ports[port]; dup {
					t.Errorf("%s and %s share resolver port %d", tk.Name, other, port)
				}
				ports[port] = tk.Name
			}
			if s.DNSRR() == strings.Contains(rules, "REDIRECT") || s.DNSRR() == strings.Contains(rules, "*filter") {
				t.Errorf("%s (dnsrr %v) rules:\n%s", tk.Name, s.DNSRR(), rules)
			}
		}
	}
	for i := range p.Nodes {
		host, sbox, ov := specs[p.HostPath(i)], specs[p.SandboxPath(i)], specs[p.OverlayPath(i)]
		if strings.Contains(host.Rules, "5432") || strings.Contains(sbox.Rules, "5432") || len(sbox.Addrs) != 3 {
			t.Errorf("node%d: db in the ingress rules or addresses:\n%s\n%s\n%v", i, host.Rules, sbox.Rules, sbox.Addrs)
		}
		remote := 0
		for _, n := range ov.Neighs {
			for _, tk := range db.Tasks {
				if n.IP == tk.IngressIP {
					remote++
				}
			}
		}
		if remote != 1 {
			t.Errorf("node%d's overlay has %d neighbours of db's remote task, want 1", i, remote)
		}
	}
}
