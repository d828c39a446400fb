package topology_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

// pack moves every rule of f into the packed form, decoded by decode.
func pack(f *topology.Firewall, decode topology.RuleDecoder) {
	for _, tb := range f.Tables {
		for _, c := range tb.Chains {
			rules := c.Rules
			c.Rules = c.Rules[:0:0]
			for _, r := range rules {
				if !c.AppendPacked(decode, r.Text, r.Line, r.HasCounters, r.Packets, r.Bytes) {
					panic("line does not pack")
				}
			}
		}
	}
}

// TestPackedChainEvaluates: a firewall whose rules are packed (decoded
// again by the parser on each access) evaluates as the decoded one does,
// counts and lists the same rules and prints the same JSON.
func TestPackedChainEvaluates(t *testing.T) {
	byLine := map[int]*topology.Rule{}
	decoded := evalNS(t)
	for _, tb := range decoded.Firewall.Tables {
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				byLine[r.Line] = r
			}
		}
	}
	packed := evalNS(t)
	decodes := 0
	pack(packed.Firewall, func(text string, line int) (*topology.Rule, error) {
		decodes++
		r := *byLine[line]
		if r.Text != text {
			t.Fatalf("line %d: decode asked for %q, the rule is %q", line, text, r.Text)
		}
		return &r, nil
	})
	if packed.Firewall.RuleCount() != decoded.Firewall.RuleCount() || len(packed.Firewall.Table("nat").Chain("A").Rules) != 0 {
		t.Fatalf("packed: %d rules, decoded %d", packed.Firewall.RuleCount(), decoded.Firewall.RuleCount())
	}
	pkts := []topology.Packet{
		{Proto: "tcp", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.168.1.2"), DPort: 8080, InIface: "eth0"},
		{Proto: "udp", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.168.1.2"), DPort: 53, InIface: "eth0"},
		{Proto: "tcp", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.168.1.2"), DPort: 8050, InIface: "eth1"},
		{Proto: "tcp", Src: netip.MustParseAddr("10.1.1.1"), Dst: netip.MustParseAddr("192.168.1.2"), DPort: 22, InIface: "eth0"},
	}
	for _, hook := range [][2]string{{"mangle", "PREROUTING"}, {"nat", "PREROUTING"}, {"filter", "INPUT"}} {
		for _, p := range pkts {
			dp, pp := p, p
			want := topology.Eval(decoded, hook[0], hook[1], &dp)
			got := topology.Eval(packed, hook[0], hook[1], &pp)
			if !reflect.DeepEqual(got, want) || dp != pp {
				t.Errorf("%s/%s %+v: packed %+v (%+v), decoded %+v (%+v)", hook[0], hook[1], p, got, pp, want, dp)
			}
		}
	}
	if decodes == 0 {
		t.Fatal("evaluating the packed firewall decoded no rule")
	}
	for _, tb := range decoded.Firewall.Tables {
		for _, c := range tb.Chains {
			pc := packed.Firewall.Table(tb.Name).Chain(c.Name)
			if !reflect.DeepEqual(pc.RuleList(), c.Rules) {
				t.Errorf("%s/%s: packed lists %v, decoded %v", tb.Name, c.Name, pc.RuleList(), c.Rules)
			}
		}
	}
	dj, err1 := json.Marshal(decoded.Firewall)
	pj, err2 := json.Marshal(packed.Firewall)
	if err1 != nil || err2 != nil || string(dj) != string(pj) {
		t.Fatalf("JSON differs (%v, %v):\n%s\n%s", err1, err2, dj, pj)
	}
}

// TestPackedRuleUndecodable: a packed rule that no longer decodes is
// undecidable, so the evaluator stops at it as unknown: never a match, a
// miss or a panic.
func TestPackedRuleUndecodable(t *testing.T) {
	ns := evalNS(t)
	pack(ns.Firewall, func(text string, line int) (*topology.Rule, error) {
		return nil, errors.New("gone")
	})
	r := ns.Firewall.Table("filter").Chain("INPUT").Rule(0)
	if !strings.Contains(r.Undecidable, "gone") || r.Text == "" || r.Line == 0 || r.Chain != "INPUT" {
		t.Fatalf("undecodable rule %+v", r)
	}
	p := topology.Packet{Proto: "tcp", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.168.1.2"), DPort: 22, InIface: "eth0"}
	d := topology.Eval(ns, "filter", "INPUT", &p)
	if d.Verdict != topology.EvalUnknown {
		t.Fatalf("verdict %q over an undecodable rule, want unknown (notes %v)", d.Verdict, d.Notes)
	}
}
