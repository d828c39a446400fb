package delta

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

func ns(name string, rules []*topology.Rule, dests ...*topology.IPVSDest) *topology.Namespace {
	n := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: name}, Firewall: &topology.Firewall{Tables: []*topology.Table{{Name: "nat", Chains: []*topology.Chain{{Name: "PREROUTING", Rules: rules}}}}}}
	if len(dests) > 0 {
		n.IPVS = &topology.IPVS{Available: true, Services: []*topology.IPVSService{{FWMark: 256, Scheduler: "rr", Impl: "ipvs", Dests: dests}}}
	}
	return n
}

func rule(text string, pkts uint64) *topology.Rule {
	return &topology.Rule{Chain: "PREROUTING", Text: text, Packets: pkts, HasCounters: true}
}

func dest(addr string, w, active int) *topology.IPVSDest {
	return &topology.IPVSDest{Addr: netip.MustParseAddr(addr), Forward: "masq", Weight: w, ActiveConns: active}
}

func TestCompare(t *testing.T) {
	old := &topology.Model{Namespaces: []*topology.Namespace{
		ns("host", []*topology.Rule{rule("-A PREROUTING -j DNAT a", 3), rule("-A PREROUTING -j gone", 0)}),
		ns("sbox", nil, dest("10.0.0.4", 1, 0), dest("10.0.0.5", 1, 0), dest("10.0.0.6", 1, 0)),
		ns("old-task", nil),
	}}
	cur := &topology.Model{Namespaces: []*topology.Namespace{
		ns("host", []*topology.Rule{rule("-A PREROUTING -j DNAT a", 8), rule("-A PREROUTING -j new", 1)}),
		ns("sbox", nil, dest("10.0.0.4", 1, 2), dest("10.0.0.5", 0, 0), dest("10.0.0.7", 1, 0)),
		ns("new-task", nil),
	}}
	s := Compare(old, cur)
	if c, ok := s.Rule("host", "nat", "PREROUTING", "-A PREROUTING -j DNAT a"); !ok || c.Delta != 5 || c.Highlight() {
		t.Errorf("moved counter: %+v %v", c, ok)
	}
	if c, ok := s.Rule("host", "nat", "PREROUTING", "-A PREROUTING -j new"); !ok || !c.Added {
		t.Errorf("new rule: %+v %v", c, ok)
	}
	if c, ok := s.Dest("sbox", "fwm 256", "10.0.0.4:0"); !ok || c.Delta != 2 || c.Highlight() {
		t.Errorf("busier backend: %+v %v", c, ok)
	}
	if c, ok := s.Dest("sbox", "fwm 256", "10.0.0.5:0"); !ok || !c.Modified {
		t.Errorf("weight 0 backend: %+v %v", c, ok)
	}
	if c, ok := s.Dest("sbox", "fwm 256", "10.0.0.7:0"); !ok || !c.Added {
		t.Errorf("new backend: %+v %v", c, ok)
	}
	for _, n := range []string{"host", "sbox", "new-task"} {
		if !s.Netns(n) {
			t.Errorf("netns %s not marked", n)
		}
	}
	removed := strings.Join(s.Removed, "\n")
	for _, want := range []string{"netns old-task", "rule host nat: -A PREROUTING -j gone", "backend sbox fwm 256 -> 10.0.0.6:0"} {
		if !strings.Contains(removed, want) {
			t.Errorf("removed does not say %q:\n%s", want, removed)
		}
	}
	// new rule, weight change, new backend, 3 removals
	if s.Count() != 6 {
		t.Errorf("count %d, want 6", s.Count())
	}
	if c := Compare(nil, cur); c.Count() != 0 || c.Netns("host") {
		t.Error("the first reading changes nothing")
	}
}
