package doctor_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

func load(t *testing.T, name string) *topology.Model {
	t.Helper()
	m, err := source.Load(context.Background(), source.Spec{Bundle: "../fixtures/bundles/" + name})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHealthyBundles(t *testing.T) {
	for _, b := range []string{"modern", "docker112", "eastwest"} {
		r := doctor.Check(load(t, b), doctor.Options{})
		if w := r.Worst(); w == doctor.Error || w == doctor.Warning {
			t.Errorf("%s: healthy bundle has findings: %+v", b, r.Findings)
		}
	}
}

// Each case breaks one thing in the modern bundle and expects exactly one
// finding above info, with its code, in the right namespace.
func TestFaults(t *testing.T) {
	sbox := func(m *topology.Model) *topology.Namespace { return m.Lookup("ingress_sbox") }
	task := func(m *topology.Model) *topology.Namespace { return m.Lookup("09cd513d96a2") }
	dropRules := func(ns *topology.Namespace, table, chain, target string) {
		c := ns.Firewall.Table(table).Chain(chain)
		var keep []*topology.Rule
		for _, r := range c.Rules {
			if r.Target != target {
				keep = append(keep, r)
			}
		}
		c.Rules = keep
	}
	cases := []struct {
		code, netns string
		brk         func(*topology.Model)
	}{
		{"published-port-no-dnat", "host", func(m *topology.Model) { dropRules(m.Lookup("host"), "nat", "DOCKER-INGRESS", "DNAT") }},
		{"dnat-unowned", "host", func(m *topology.Model) {
			sbox(m).Link("eth1").Addrs = []netip.Prefix{netip.MustParsePrefix("172.18.0.77/16")}
		}},
		{"dnat-port-mismatch", "host", func(m *topology.Model) {
			for _, r := range m.Lookup("host").Firewall.Table("nat").Chain("DOCKER-INGRESS").Rules {
				if r.Target == "DNAT" {
					r.TargetOpts[0].Args[0] = "172.18.0.2:9090"
				}
			}
		}},
		{"mark-missing", "ingress_sbox", func(m *topology.Model) { dropRules(sbox(m), "mangle", "PREROUTING", "MARK") }},
		{"mark-no-service", "ingress_sbox", func(m *topology.Model) { sbox(m).IPVS.Services = nil }},
		{"service-no-backends", "ingress_sbox", func(m *topology.Model) { sbox(m).IPVS.Services[0].Dests = nil }},
		{"backends-weight-zero", "ingress_sbox", func(m *topology.Model) {
			for _, d := range sbox(m).IPVS.Services[0].Dests {
				d.Weight = 0
			}
		}},
		{"snat-missing", "ingress_sbox", func(m *topology.Model) { dropRules(sbox(m), "nat", "POSTROUTING", "SNAT") }},
		{"redirect-wrong", "09cd513d96a2", func(m *topology.Model) {
			for _, r := range task(m).Firewall.Table("nat").Chain("PREROUTING").Rules {
				r.TargetOpts[0].Args[0] = "81"
			}
			m.Docker.Services[0].Ports[0].Target = 80
		}},
		// A bundle without Docker's metadata: the task's ingress filter
		// still says which port the task serves.
		{"redirect-wrong", "09cd513d96a2", func(m *topology.Model) {
			for _, r := range task(m).Firewall.Table("nat").Chain("PREROUTING").Rules {
				r.TargetOpts[0].Args[0] = "81"
			}
			m.Docker = nil
		}},
		{"task-not-listening", "09cd513d96a2", func(m *topology.Model) {
			task(m).Sockets = []topology.Socket{{Proto: "tcp", Addr: netip.MustParseAddr("0.0.0.0"), Port: 8081}}
		}},
		{"filter-drop", "host", func(m *topology.Model) {
			f := m.Lookup("host").Firewall.Table("filter").Chain("FORWARD")
			f.Policy, f.Rules = "DROP", nil
		}},
		{"mtu-mismatch", "1-c5h7abz82p", func(m *topology.Model) { m.Lookup("1-c5h7abz82p").Link("veth1").MTU = 1500 }},
		{"forwarding-disabled", "host", func(m *topology.Model) {
			m.Lookup("host").Sysctls = topology.Sysctls{"net.ipv4.ip_forward": "0"}
		}},
		{"conntrack-full", "host", func(m *topology.Model) {
			m.Lookup("host").Sysctls = topology.Sysctls{"net.netfilter.nf_conntrack_count": "262000", "net.netfilter.nf_conntrack_max": "262144"}
		}},
		{"stale-backend", "ingress_sbox", func(m *topology.Model) {
			ovl := m.Lookup("1-c5h7abz82p")
			ovl.Neighbours, ovl.FDB = []topology.Neigh{}, []topology.FDB{} // read, and empty
			// --verbose: every node's tasks, none at 10.0.0.6
			for i := range m.Docker.Networks {
				m.Docker.Networks[i].Tasks = []topology.DockerTask{}
			}
		}},
		// Without every node's tasks (the bundle's network inspect is not
		// --verbose), no task at 10.0.0.6 is not known: never stale-backend
		// (whose fix removes the real server), the overlay's missing entry.
		{"vxlan-no-fdb", "1-c5h7abz82p", func(m *topology.Model) {
			ovl := m.Lookup("1-c5h7abz82p")
			ovl.Neighbours, ovl.FDB = []topology.Neigh{}, []topology.FDB{}
		}},
		{"vxlan-no-fdb", "1-c5h7abz82p", func(m *topology.Model) {
			ovl := m.Lookup("1-c5h7abz82p")
			ovl.Neighbours = []topology.Neigh{{IP: netip.MustParseAddr("10.0.0.6"), MAC: topology.MustParseMAC("02:42:0a:00:00:06"), Dev: "vxlan0", State: "permanent"}}
			ovl.FDB = []topology.FDB{}
		}},
		{"vxlan-blocked", "host", func(m *topology.Model) {
			ovl := m.Lookup("1-c5h7abz82p")
			ovl.Neighbours = []topology.Neigh{{IP: netip.MustParseAddr("10.0.0.6"), MAC: topology.MustParseMAC("02:42:0a:00:00:06"), Dev: "vxlan0"}}
			ovl.FDB = []topology.FDB{{MAC: topology.MustParseMAC("02:42:0a:00:00:06"), Dev: "vxlan0", Dst: netip.MustParseAddr("192.168.56.12"), State: "permanent"}}
			in := m.Lookup("host").Firewall.Table("filter").Chain("INPUT")
			in.Rules = append(in.Rules, &topology.Rule{Chain: "INPUT", Proto: &topology.Negatable{Value: "udp"},
				Matches: []topology.Match{{Name: "udp", Opts: []topology.Option{{Name: "dport", Args: []string{"4789"}}}}},
				Target:  "DROP", Text: "-A INPUT -p udp -m udp --dport 4789 -j DROP"})
		}},
		{"stale-conntrack", "host", func(m *topology.Model) {
			// a udp service: reuse tcp/8080's rules as udp/8080
			h := m.Lookup("host")
			for _, ns := range m.Namespaces {
				for _, tb := range ns.Firewall.Tables {
					for _, c := range tb.Chains {
						for _, r := range c.Rules {
							if r.Proto != nil && r.Proto.Value == "tcp" {
								r.Proto.Value = "udp"
							}
						}
					}
				}
			}
			m.Docker.Services[0].Ports[0].Proto = "udp"
			h.Conntrack = []topology.Conntrack{{Proto: "udp",
				Orig:  topology.Tuple{Src: netip.MustParseAddr("192.0.2.7"), Dst: netip.MustParseAddr("192.168.56.11"), SPort: 5000, DPort: 8080},
				Reply: topology.Tuple{Src: netip.MustParseAddr("172.18.0.99"), Dst: netip.MustParseAddr("192.0.2.7"), SPort: 8080, DPort: 5000}}}
		}},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			m := load(t, "modern")
			// the overlay state is "read" unless a case says otherwise, so
			// remote backends are judged; 10.0.0.6 lives on another node.
			overlayRead(m)
			if r := doctor.Check(m, doctor.Options{}); r.Worst() == doctor.Error || r.Worst() == doctor.Warning {
				t.Fatalf("before the fault: %+v", r.Findings)
			}
			c.brk(m)
			// the faults edit rule text: type the arguments again, as a
			// reader would have
			for _, ns := range m.Namespaces {
				if err := ns.Firewall.Compile(); err != nil {
					t.Fatal(err)
				}
			}
			r := doctor.Check(m, doctor.Options{})
			var serious []doctor.Finding
			for _, f := range r.Findings {
				if f.Severity != doctor.Info {
					serious = append(serious, f)
				}
			}
			if len(serious) != 1 || serious[0].Code != c.code || serious[0].Netns != c.netns {
				t.Fatalf("want exactly %s in %s, got %+v", c.code, c.netns, serious)
			}
			f := serious[0]
			if f.Summary == "" || f.Evidence == "" || f.Fix == "" || f.Confirm == "" {
				t.Errorf("finding lacks words: %+v", f)
			}
			var b strings.Builder
			if err := doctor.WriteText(&b, r); err != nil || !strings.Contains(b.String(), "["+c.code+"]") {
				t.Errorf("text report: %v\n%s", err, b.String())
			}
		})
	}
}

// overlayRead gives the modern bundle's overlay the neighbour and FDB
// entries of its remote task 10.0.0.6 (on node 192.168.56.12), as a live
// read would: the way to it is then known.
func overlayRead(m *topology.Model) {
	ovl := m.Lookup("1-c5h7abz82p")
	ovl.Neighbours = []topology.Neigh{{IP: netip.MustParseAddr("10.0.0.6"), MAC: topology.MustParseMAC("02:42:0a:00:00:06"), Dev: "vxlan0", State: "permanent"}}
	ovl.FDB = []topology.FDB{{MAC: topology.MustParseMAC("02:42:0a:00:00:06"), Dev: "vxlan0", Dst: netip.MustParseAddr("192.168.56.12"), State: "permanent"}}
}

// TestProbeFailure: a path that is complete on paper but gets no answer.
func TestProbeFailure(t *testing.T) {
	m := load(t, "modern")
	overlayRead(m)
	r := doctor.Check(m, doctor.Options{Probe: func(proto string, port int) error {
		return &probeErr{proto, port}
	}})
	if r.Worst() != doctor.Error || r.Findings[0].Code != "no-answer" || r.Findings[0].Port != "tcp/8080" {
		t.Fatalf("%+v", r.Findings)
	}
}

type probeErr struct {
	proto string
	port  int
}

func (e *probeErr) Error() string { return "no answer from " + e.proto }

// emulate turns the modern bundle's sandbox into one balanced by the
// mesh's iptables emulation of IPVS on a kernel without IPVS: FWM 256
// (the web service) over its two real servers, and FWM 257 for another
// service.
func emulate(t *testing.T, m *topology.Model) {
	t.Helper()
	sbox := m.Lookup("ingress_sbox")
	sbox.IPVS = &topology.IPVS{Available: false, Reason: "kernel has no IPVS"}
	fw, err := parse.IptablesSave("emulation", strings.NewReader(`*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -m mark --mark 0x100 -m statistic --mode nth --every 2 --packet 0 -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination 10.0.0.4
-A PREROUTING -m mark --mark 0x100 -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination 10.0.0.6
-A PREROUTING -m mark --mark 0x101 -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination 10.0.0.9
COMMIT
`))
	if err != nil {
		t.Fatal(err)
	}
	pre := sbox.Firewall.Table("nat").Chain("PREROUTING")
	pre.Rules = append(pre.Rules, fw.Table("nat").Chain("PREROUTING").Rules...)
}

// With the iptables emulation, a service whose DNAT rules are all gone is
// a service without backends (in the emulation a service exists only as
// its real servers' rules); with no emulated service left at all, the
// kernel's missing IPVS is the finding.
func TestEmulatedNoBackends(t *testing.T) {
	for _, tc := range []struct {
		drop []string // marks whose emulation rules are removed
		code string
	}{
		{nil, ""},
		{[]string{"0x100"}, "service-no-backends"},
		{[]string{"0x100", "0x101"}, "ipvs-missing"},
	} {
		m := load(t, "modern")
		ovl := m.Lookup("1-c5h7abz82p")
		ovl.Neighbours = []topology.Neigh{{IP: netip.MustParseAddr("10.0.0.6"), MAC: topology.MustParseMAC("02:42:0a:00:00:06"), Dev: "vxlan0", State: "permanent"}}
		ovl.FDB = []topology.FDB{{MAC: topology.MustParseMAC("02:42:0a:00:00:06"), Dev: "vxlan0", Dst: netip.MustParseAddr("192.168.56.12"), State: "permanent"}}
		emulate(t, m)
		pre := m.Lookup("ingress_sbox").Firewall.Table("nat").Chain("PREROUTING")
		var keep []*topology.Rule
		for _, r := range pre.Rules {
			drop := false
			for _, mk := range tc.drop {
				drop = drop || strings.Contains(r.Text, "--mark "+mk+" ")
			}
			if !drop {
				keep = append(keep, r)
			}
		}
		pre.Rules = keep
		r := doctor.Check(m, doctor.Options{})
		var serious []doctor.Finding
		for _, f := range r.Findings {
			if f.Severity != doctor.Info {
				serious = append(serious, f)
			}
		}
		if tc.code == "" {
			if len(serious) != 0 {
				t.Errorf("healthy emulation: %+v", serious)
			}
			continue
		}
		if len(serious) != 1 || serious[0].Code != tc.code || serious[0].Netns != "ingress_sbox" || serious[0].Port != "tcp/8080" {
			t.Errorf("drop %v: want exactly %s in ingress_sbox for tcp/8080, got %+v", tc.drop, tc.code, serious)
		}
	}
}

func TestIPVSTimeouts(t *testing.T) {
	m := load(t, "modern")
	m.Lookup("ingress_sbox").IPVS.Timeouts = &topology.IPVSTimeouts{TCP: 900, TCPFin: 120, UDP: 300}
	r := doctor.Check(m, doctor.Options{})
	if r.Worst() != doctor.Info || !hasCode(r, "ipvs-timeouts") {
		t.Fatalf("without a keep-alive the timeouts are reported as info: %+v", r.Findings)
	}
	r = doctor.Check(m, doctor.Options{KeepAlive: 20 * time.Minute})
	f := r.Findings[0]
	if f.Code != "ipvs-idle-timeout" || f.Severity != doctor.Warning || f.Netns != "ingress_sbox" || !strings.Contains(f.Evidence, "tcp 900s") || !strings.Contains(f.Evidence, "1200s") {
		t.Fatalf("keep-alive 20m vs tcp 900s: %+v", r.Findings)
	}
	if r := doctor.Check(m, doctor.Options{KeepAlive: 5 * time.Minute}); r.Worst() != doctor.Info {
		t.Fatalf("keep-alive 5m is below 900s: %+v", r.Findings)
	}
}

func hasCode(r *doctor.Report, code string) bool {
	for _, f := range r.Findings {
		if f.Code == code {
			return true
		}
	}
	return false
}
