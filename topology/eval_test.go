package topology_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

const evalRules = `*mangle
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x100/0xffffffff
-A PREROUTING -m mark --mark 0x100 -j MARK --set-mark 0x1/0x1
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
-A PREROUTING ! -s 10.0.0.0/8 -j A
-A PREROUTING -j DNAT --to-destination 1.1.1.1
-A A -p udp -j DNAT --to-destination 2.2.2.2
-A A -g B
-A A -j DNAT --to-destination 3.3.3.3
-A B -i eth+ -p tcp -m multiport --dports 80,8000:8100 -j DNAT --to-destination 4.4.4.4:81
-A B -j RETURN
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -m set --match-set x src -j ACCEPT
COMMIT
`

func evalNS(t *testing.T) *topology.Namespace {
	return &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "n"}, Firewall: fw(t, "eval", evalRules),
		Links: []*topology.Link{link("eth0", "veth", 1500, "192.168.1.2/24")}}
}

func TestEvalMarks(t *testing.T) {
	ns := evalNS(t)
	pkt := topology.Packet{Proto: "tcp", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.168.1.2"), DPort: 8080, InIface: "eth0"}
	d := topology.Eval(ns, "mangle", "PREROUTING", &pkt)
	// --set-xmark 0x100/0xffffffff then --set-mark 0x1/0x1 (or-like on bit 0)
	if pkt.Mark != 0x101 || len(d.Marks) != 2 {
		t.Fatalf("mark %#x after %d MARK rules", pkt.Mark, len(d.Marks))
	}
}

func TestEvalJumpsGotoReturn(t *testing.T) {
	ns := evalNS(t)
	cases := []struct {
		name, proto, src string
		dport            int
		iface            string
		want             string
	}{
		// ! -s 10/8 -> A; tcp -> goto B; multiport match -> 4.4.4.4:81
		{"goto then match", "tcp", "192.0.2.1", 8050, "eth0", "4.4.4.4:81"},
		// goto B, no match, RETURN from B returns to PREROUTING (goto
		// replaced A's frame), so the next PREROUTING rule decides.
		{"return after goto skips the caller", "tcp", "192.0.2.1", 9999, "eth0", "1.1.1.1:9999"},
		{"udp in A", "udp", "192.0.2.1", 53, "eth0", "2.2.2.2:53"},
		{"negated source skips A", "tcp", "10.1.2.3", 8050, "eth0", "1.1.1.1:8050"},
		{"wildcard iface miss", "tcp", "192.0.2.1", 80, "ens3", "1.1.1.1:80"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkt := topology.Packet{Proto: c.proto, Src: netip.MustParseAddr(c.src), Dst: netip.MustParseAddr("192.168.1.2"), DPort: c.dport, InIface: c.iface}
			d := topology.Eval(ns, "nat", "PREROUTING", &pkt)
			got := netip.AddrPortFrom(pkt.Dst, uint16(pkt.DPort)).String()
			if d.Verdict != "DNAT" || got != c.want {
				t.Fatalf("verdict %q to %s, want DNAT to %s", d.Verdict, got, c.want)
			}
		})
	}
}

func TestEvalPolicyAndUnknownMatch(t *testing.T) {
	ns := evalNS(t)
	pkt := topology.Packet{Proto: "tcp", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.168.1.2"), DPort: 80}
	d := topology.Eval(ns, "filter", "INPUT", &pkt)
	if d.Verdict != "DROP" || d.Policy != "DROP" || d.By != nil {
		t.Fatalf("want policy DROP, got %+v", d)
	}
	if len(d.Notes) != 1 || !strings.Contains(d.Notes[0], `match "set"`) {
		t.Fatalf("the ipset match must be reported as not evaluated: %v", d.Notes)
	}
	pkt.DPort = 22
	if d := topology.Eval(ns, "filter", "INPUT", &pkt); d.Verdict != "ACCEPT" || d.By == nil || d.By.Rule.Line == 0 {
		t.Fatalf("want ACCEPT by the dport 22 rule, got %+v", d)
	}
}

func TestParseHelpers(t *testing.T) {
	for in, want := range map[string]string{"10.0.0.4": "10.0.0.4/32", "10.0.0.0/24": "10.0.0.0/24", "10.0.0.0/255.255.0.0": "10.0.0.0/16"} {
		p, ok := topology.ParsePrefix(in)
		if !ok || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v %v, want %s", in, p, ok, want)
		}
	}
	if _, ok := topology.ParsePrefix("10.0.0.0/x"); ok {
		t.Error("ParsePrefix accepted a bad mask")
	}
	if _, ok := topology.ParsePrefix("10.0.0.0/255.0.255.0"); ok {
		t.Error("ParsePrefix took a non-contiguous mask for a prefix")
	}
}

// TestEvalUndecidable: a rule the reader could not recover exactly is
// never guessed at: when its readable parts miss the packet it misses; when
// they match, the walk ends there as unknown (with the reason), unless the
// rule cannot change anything on the path (LOG, a counting rule).
func TestEvalUndecidable(t *testing.T) {
	ns := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "n"}, Firewall: fw(t, "u", `*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -p udp -j DNAT --to-destination 9.9.9.9
-A PREROUTING -j LOG
-A PREROUTING -p tcp -j DNAT --to-destination 2.2.2.2
-A PREROUTING -j DNAT --to-destination 3.3.3.3
COMMIT
`)}
	rules := ns.Firewall.Table("nat").Chain("PREROUTING").Rules
	rules[0].Undecidable = "-L prints `bpf ...`, which does not read back"
	rules[1].Undecidable = "-L prints `u32 ...`, which does not read back"
	rules[2].Undecidable = "-L prints `policy ...`, which does not read back"
	pkt := topology.Packet{Proto: "tcp", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.9"), DPort: 80}
	d := topology.Eval(ns, "nat", "PREROUTING", &pkt)
	if d.Verdict != topology.EvalUnknown || d.By == nil || d.By.Rule != rules[2] {
		t.Fatalf("want unknown at the tcp DNAT, got %+v", d)
	}
	if len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "unknown whether line 5 matches") || !strings.Contains(d.Notes[0], "policy ...") {
		t.Errorf("notes %q", d.Notes)
	}
	if pkt.Dst.String() != "192.0.2.9" || pkt.DNATed {
		t.Errorf("the packet was rewritten by a rule not known to match: %v", pkt)
	}
	rules[2].Undecidable = ""
	if d := topology.Eval(ns, "nat", "PREROUTING", &pkt); d.Verdict != "DNAT" || pkt.Dst.String() != "2.2.2.2" {
		t.Errorf("decidable again: %+v %v", d, pkt)
	}
}

// TestPathUndecidable: a path through an undecidable rule ends there with
// an unknown hop naming the rule, not with a guess (here: the host's DNAT
// cannot be read, which must not read as "not published").
func TestPathUndecidable(t *testing.T) {
	w := newWorld()
	m := w.model(t)
	for _, r := range m.Lookup("host").Firewall.Table("nat").Chain("DOCKER-INGRESS").Rules {
		if r.Target == "DNAT" {
			r.Undecidable = "-L prints `foo`, which does not read back"
		}
	}
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	last := p.Hops[len(p.Hops)-1]
	if p.Verdict != topology.VerdictUnknown || len(p.Backends) != 0 || last.Kind != topology.HopUnknown || last.Code != topology.UnknownUndecidable ||
		last.Netns != "host" || last.Chain != "DOCKER-INGRESS" || !strings.Contains(last.Reason, "foo") {
		t.Fatalf("path %+v", p)
	}
	// in a task: that backend stops there, the others are followed
	m = w.model(t)
	for _, r := range m.Lookup(w.taskNames[0]).Firewall.Table("nat").Chain("PREROUTING").Rules {
		r.Undecidable = "-L prints `foo`, which does not read back"
	}
	p = mustPath(t, m, 8080)
	b := p.Backends[0]
	if p.Verdict != topology.VerdictUnknown || b.Remote || len(b.Hops) != 1 || b.Hops[0].Code != topology.UnknownUndecidable || b.TargetPort != 0 {
		t.Fatalf("backend %+v of %+v", b, p)
	}
}
