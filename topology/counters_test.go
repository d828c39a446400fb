package topology

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func fwOf(backend FirewallBackend, policyPkts uint64, rules ...*Rule) *Firewall {
	return &Firewall{Backend: backend, Tables: []*Table{{Name: "filter", Chains: []*Chain{
		{Name: "INPUT", Policy: "DROP", Packets: policyPkts, Bytes: 60 * policyPkts, Rules: rules},
		{Name: "X", Policy: "-"},
	}}}}
}

func rule(text string, pkts uint64) *Rule {
	return &Rule{Chain: "INPUT", Text: text, HasCounters: true, Packets: pkts, Bytes: 100 * pkts}
}

// TestDiffCounters: every kind of counter, rules matched by text when one
// was inserted before them, a counter that appeared (0 before), one that
// went back, and what cannot be compared left out.
func TestDiffCounters(t *testing.T) {
	a := netip.MustParseAddr
	svc := func(in uint64) *IPVS {
		return &IPVS{Available: true, Services: []*IPVSService{{FWMark: 256, Stats: &IPVSStats{Conns: 1, InPkts: in, InBytes: 10 * in},
			Dests: []*IPVSDest{{Addr: a("10.0.0.5"), Port: 80, Stats: &IPVSStats{InPkts: in}}}}}}
	}
	sa := func(pkts uint64, failed uint32) *Xfrm {
		return &Xfrm{States: []XfrmState{{Src: a("192.0.2.11"), Dst: a("192.0.2.10"), Proto: XfrmESP, SPI: 7,
			Stats: &XfrmSAStats{Packets: pkts, Bytes: 100 * pkts, IntegrityFailed: failed}}}}
	}
	before := &Model{Namespaces: []*Namespace{
		{NetnsRef: NetnsRef{Name: "b"}, Firewall: fwOf("nf_tables", 1, rule("-A INPUT -p udp -j DROP", 5), rule("-A INPUT -j ACCEPT", 9)),
			OtherFirewall: fwOf("legacy", 0, rule("-A INPUT -p udp --dport 4789 -j DROP", 0)),
			Counters: &Counters{SNMP: map[string]int64{"UdpNoPorts": 2, "TcpMaxConn": -1}, Conntrack: map[string]uint64{"entries": 3, "insert_failed": 0},
				Links: map[string]LinkCounters{"vb": {"rx_packets": 10, "rx_dropped": 4}}},
			IPVS: svc(5), Xfrm: sa(3, 0)},
		{NetnsRef: NetnsRef{Name: "gone"}, Counters: &Counters{SNMP: map[string]int64{"UdpNoPorts": 1}}},
	}}
	after := &Model{Namespaces: []*Namespace{
		{NetnsRef: NetnsRef{Name: "new"}, Counters: &Counters{SNMP: map[string]int64{"UdpNoPorts": 9}}},
		{NetnsRef: NetnsRef{Name: "b"}, Firewall: fwOf("nf_tables", 3, rule("-A INPUT -p tcp -j DROP", 1), rule("-A INPUT -p udp -j DROP", 9), rule("-A INPUT -j ACCEPT", 9)),
			OtherFirewall: fwOf("legacy", 0, rule("-A INPUT -p udp --dport 4789 -j DROP", 2)),
			Counters: &Counters{SNMP: map[string]int64{"UdpNoPorts": 5, "TcpMaxConn": -1, "IcmpMsgOutType3": 3},
				Conntrack: map[string]uint64{"entries": 9, "insert_failed": 2}, Links: map[string]LinkCounters{"vb": {"rx_packets": 16, "rx_dropped": 1}, "vc": {"rx_packets": 1}}},
			IPVS: svc(8), Xfrm: sa(5, 1)},
	}}
	want := []CounterDelta{
		{Netns: "b", Kind: CounterRule, Object: "filter INPUT #2", Backend: "nf_tables", Text: "-A INPUT -p udp -j DROP", Counter: "packets", Before: 5, After: 9, Delta: 4, Bytes: 400},
		{Netns: "b", Kind: CounterRule, Object: "filter INPUT #1", Backend: "legacy", Text: "-A INPUT -p udp --dport 4789 -j DROP", Counter: "packets", Before: 0, After: 2, Delta: 2, Bytes: 200},
		{Netns: "b", Kind: CounterPolicy, Object: "filter INPUT", Backend: "nf_tables", Text: "DROP", Counter: "packets", Before: 1, After: 3, Delta: 2, Bytes: 120},
		{Netns: "b", Kind: CounterSNMP, Counter: "IcmpMsgOutType3", Before: 0, After: 3, Delta: 3},
		{Netns: "b", Kind: CounterSNMP, Counter: "UdpNoPorts", Before: 2, After: 5, Delta: 3},
		{Netns: "b", Kind: CounterConntrack, Counter: "insert_failed", Before: 0, After: 2, Delta: 2},
		{Netns: "b", Kind: CounterLink, Object: "vb", Counter: "rx_dropped", Before: 4, After: 1, Delta: -3, Reset: true},
		{Netns: "b", Kind: CounterLink, Object: "vb", Counter: "rx_packets", Before: 10, After: 16, Delta: 6},
		{Netns: "b", Kind: CounterIPVSService, Object: "FWM 256", Counter: "in_pkts", Before: 5, After: 8, Delta: 3, Bytes: 30},
		{Netns: "b", Kind: CounterIPVSDest, Object: "FWM 256 -> 10.0.0.5:80", Counter: "in_pkts", Before: 5, After: 8, Delta: 3},
		{Netns: "b", Kind: CounterXfrmSA, Object: "esp 0x00000007 192.0.2.11->192.0.2.10", Counter: "integrity_failed", Before: 0, After: 1, Delta: 1},
		{Netns: "b", Kind: CounterXfrmSA, Object: "esp 0x00000007 192.0.2.11->192.0.2.10", Counter: "packets", Before: 3, After: 5, Delta: 2, Bytes: 200},
	}
	if d := cmp.Diff(want, DiffCounters(before, after)); d != "" {
		t.Errorf("deltas (-want +got):\n%s", d)
	}
	// A firewall read from another backend the second time is not the
	// same rules: nothing to compare.
	after.Namespaces[1].Firewall.Backend = "legacy"
	for _, d := range DiffCounters(before, after) {
		if d.Backend == "legacy" && d.Object != "filter INPUT #1" {
			t.Errorf("compared across backends: %+v", d)
		}
	}
	if len(DiffCounters(after, after)) != 0 || DiffCounters(nil, after) != nil {
		t.Error("a snapshot against itself, or nothing, moved")
	}
}
