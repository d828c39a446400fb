package topology_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/topology"
)

// rule builds a rule the way a reader does: header, matches and target
// from iptables-save words, then Compile. It fails the test on a bad spec.
func ruleOf(t *testing.T, target string, topts [][2]string, matches ...topology.Match) *topology.Rule {
	t.Helper()
	r := &topology.Rule{Chain: "X", Target: target, Matches: matches}
	for _, o := range topts {
		r.TargetOpts = append(r.TargetOpts, topology.Option{Name: o[0], Args: strings.Fields(o[1])})
	}
	return r
}

func opt(name, arg string) topology.Option {
	return topology.Option{Name: name, Args: strings.Fields(arg)}
}

func TestCompileTypedArgs(t *testing.T) {
	a := netip.MustParseAddr
	for _, c := range []struct {
		name string
		r    *topology.Rule
		nat  *topology.NATRange
		mark *topology.MarkSet
	}{
		{"dnat addr:port", ruleOf(t, "DNAT", [][2]string{{"to-destination", "172.18.0.2:8080"}}),
			&topology.NATRange{Addr: a("172.18.0.2"), AddrHi: a("172.18.0.2"), Port: 8080, PortHi: 8080}, nil},
		{"dnat range", ruleOf(t, "DNAT", [][2]string{{"to-destination", "10.0.0.4-10.0.0.9:80-90"}}),
			&topology.NATRange{Addr: a("10.0.0.4"), AddrHi: a("10.0.0.9"), Port: 80, PortHi: 90}, nil},
		{"dnat address only", ruleOf(t, "DNAT", [][2]string{{"to-destination", "10.0.0.4"}}),
			&topology.NATRange{Addr: a("10.0.0.4"), AddrHi: a("10.0.0.4")}, nil},
		{"snat port only (dockerd's DNS rule)", ruleOf(t, "SNAT", [][2]string{{"to-source", ":53"}}),
			&topology.NATRange{Port: 53, PortHi: 53}, nil},
		{"dnat ipv6", ruleOf(t, "DNAT", [][2]string{{"to-destination", "[fd00::2]:80"}}),
			&topology.NATRange{Addr: a("fd00::2"), AddrHi: a("fd00::2"), Port: 80, PortHi: 80}, nil},
		{"redirect", ruleOf(t, "REDIRECT", [][2]string{{"to-ports", "80"}}), &topology.NATRange{Port: 80, PortHi: 80}, nil},
		{"masquerade ports", ruleOf(t, "MASQUERADE", [][2]string{{"to-ports", "1024-65535"}, {"random", ""}}), &topology.NATRange{Port: 1024, PortHi: 65535}, nil},
		{"redirect without ports", ruleOf(t, "REDIRECT", nil), nil, nil},
		{"set-xmark", ruleOf(t, "MARK", [][2]string{{"set-xmark", "0x100/0xffffffff"}}), nil, &topology.MarkSet{Op: topology.MarkXSet, Value: 0x100, Mask: 0xffffffff}},
		{"set-mark decimal", ruleOf(t, "MARK", [][2]string{{"set-mark", "317"}}), nil, &topology.MarkSet{Op: topology.MarkSetBits, Value: 317, Mask: 0xffffffff}},
		{"or-mark octal", ruleOf(t, "MARK", [][2]string{{"or-mark", "010"}}), nil, &topology.MarkSet{Op: topology.MarkOr, Value: 8}},
		{"and-mark", ruleOf(t, "MARK", [][2]string{{"and-mark", "0xff"}}), nil, &topology.MarkSet{Op: topology.MarkAnd, Value: 0xff}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.r.Compile(); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.nat, c.r.NAT); d != "" {
				t.Errorf("NAT (-want +got):\n%s", d)
			}
			if d := cmp.Diff(c.mark, c.r.SetMark); d != "" {
				t.Errorf("SetMark (-want +got):\n%s", d)
			}
		})
	}

	r := ruleOf(t, "ACCEPT", nil,
		topology.Match{Name: "tcp", Opts: []topology.Option{opt("sport", "1024:65535"), opt("dport", "8080")}},
		topology.Match{Name: "multiport", Opts: []topology.Option{opt("dports", "80,443:445,2377")}},
		topology.Match{Name: "mark", Opts: []topology.Option{opt("mark", "0x100/0xff00")}},
		topology.Match{Name: "comment", Opts: []topology.Option{opt("comment", "8080")}})
	r.Src = &topology.Negatable{Value: "10.0.0.0/255.255.0.0"}
	r.Dst = &topology.Negatable{Neg: true, Value: "10.255.0.4/32"}
	if err := r.Compile(); err != nil {
		t.Fatal(err)
	}
	want := [][]topology.PortRange{{{Lo: 1024, Hi: 65535}}, {{Lo: 8080, Hi: 8080}}, {{Lo: 80, Hi: 80}, {Lo: 443, Hi: 445}, {Lo: 2377, Hi: 2377}}}
	got := [][]topology.PortRange{r.Matches[0].Opts[0].Ports, r.Matches[0].Opts[1].Ports, r.Matches[1].Opts[0].Ports}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	if m := r.Matches[2].Opts[0].Mark; m == nil || *m != (topology.MarkMask{Value: 0x100, Mask: 0xff00}) {
		t.Errorf("mark %+v", m)
	}
	if r.Matches[3].Opts[0].Ports != nil {
		t.Error("a comment is not a port")
	}
	if r.Src.Net != netip.MustParsePrefix("10.0.0.0/16") || r.Dst.Net != netip.MustParsePrefix("10.255.0.4/32") {
		t.Errorf("src %v dst %v", r.Src.Net, r.Dst.Net)
	}
}

// TestCompileRefusesBadArgs: an argument that does not parse is an error
// naming the option and the value; it is never wrapped (70000 is not 4464),
// defaulted (zzz is not mark 0) or replaced (abc does not keep the old port).
func TestCompileRefusesBadArgs(t *testing.T) {
	for _, c := range []struct {
		r    *topology.Rule
		want string
	}{
		{ruleOf(t, "DNAT", [][2]string{{"to-destination", "172.18.0.2:70000"}}), `--to-destination "172.18.0.2:70000": port 70000 out of range`},
		{ruleOf(t, "DNAT", [][2]string{{"to-destination", "foo"}}), `--to-destination "foo": bad address "foo"`},
		{ruleOf(t, "DNAT", [][2]string{{"to-destination", "10.0.0.9-fd00::1"}}), `--to-destination "10.0.0.9-fd00::1": address range 10.0.0.9-fd00::1 mixes IPv4 and IPv6`},
		{ruleOf(t, "DNAT", [][2]string{{"to-destination", "1.2.3.4:"}}), `--to-destination "1.2.3.4:": bad port ""`},
		{ruleOf(t, "DNAT", nil), "DNAT without --to-destination"},
		{ruleOf(t, "SNAT", [][2]string{{"to-source", "10.0.0.2:-1"}}), `--to-source "10.0.0.2:-1": bad port`},
		{ruleOf(t, "REDIRECT", [][2]string{{"to-ports", "abc"}}), `--to-ports "abc": bad port "abc"`},
		{ruleOf(t, "REDIRECT", [][2]string{{"to-ports", "10.0.0.1:80"}}), `--to-ports "10.0.0.1:80": bad port`},
		{ruleOf(t, "MASQUERADE", [][2]string{{"to-ports", "90-80"}}), `--to-ports "90-80": port range 90-80 is reversed`},
		{ruleOf(t, "MARK", [][2]string{{"set-xmark", "zzz"}}), `--set-xmark "zzz": bad number "zzz"`},
		{ruleOf(t, "MARK", [][2]string{{"set-xmark", "0x100/0x1ffffffff"}}), `--set-xmark "0x100/0x1ffffffff": bad number "0x1ffffffff"`},
		{ruleOf(t, "MARK", [][2]string{{"set-mark", "-1"}}), `--set-mark "-1": bad number "-1"`},
		{ruleOf(t, "MARK", [][2]string{{"set-xmark", "1_000"}}), `bad number "1_000"`},
		{ruleOf(t, "MARK", nil), "MARK without --set-xmark"},
		{ruleOf(t, "MARK", [][2]string{{"set-xmark", "0x1"}, {"or-mark", "0x2"}}), "MARK with two operations"},
		{ruleOf(t, "ACCEPT", nil, topology.Match{Name: "tcp", Opts: []topology.Option{opt("dport", "70000")}}), `--dport "70000": port 70000 out of range`},
		{ruleOf(t, "ACCEPT", nil, topology.Match{Name: "udp", Opts: []topology.Option{opt("sport", "9:8")}}), `--sport "9:8": port range 9:8 is reversed`},
		{ruleOf(t, "ACCEPT", nil, topology.Match{Name: "tcp", Opts: []topology.Option{opt("dport", "80,81")}}), `--dport "80,81": bad port "80,81"`},
		{ruleOf(t, "ACCEPT", nil, topology.Match{Name: "tcp", Opts: []topology.Option{opt("dport", "")}}), `--dport wants one argument`},
		{ruleOf(t, "ACCEPT", nil, topology.Match{Name: "multiport", Opts: []topology.Option{opt("dports", "80,,81")}}), `--dports "80,,81": bad port ""`},
		{ruleOf(t, "ACCEPT", nil, topology.Match{Name: "mark", Opts: []topology.Option{opt("mark", "0x100/zz")}}), `--mark "0x100/zz": bad number "zz"`},
	} {
		err := c.r.Compile()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v %v: error %v, want %q", c.r.Target, c.r.TargetOpts, c.r.Matches, err, c.want)
		}
	}
	for _, hdr := range []struct{ flag, v string }{{"-s", "10.0.0.0/33"}, {"-d", "foo"}, {"-d", "10.0.0.1/255.0.255.0x"}} {
		r := ruleOf(t, "ACCEPT", nil)
		n := &topology.Negatable{Value: hdr.v}
		if hdr.flag == "-s" {
			r.Src = n
		} else {
			r.Dst = n
		}
		if err := r.Compile(); err == nil || !strings.Contains(err.Error(), hdr.flag+" "+`"`+hdr.v+`"`) {
			t.Errorf("%s %s: error %v", hdr.flag, hdr.v, err)
		}
	}
}

// TestCompileUndecidable: valid iptables that the evaluator cannot follow
// exactly is marked, with the reason, instead of being guessed at.
func TestCompileUndecidable(t *testing.T) {
	r := ruleOf(t, "ACCEPT", nil)
	r.Src = &topology.Negatable{Value: "10.0.0.0/255.0.255.0"}
	if err := r.Compile(); err != nil || !strings.Contains(r.Undecidable, "non-contiguous") {
		t.Errorf("non-contiguous mask: %v, undecidable %q", err, r.Undecidable)
	}
	// libxt_NAT takes a reversed address range and so does the kernel
	r = ruleOf(t, "SNAT", [][2]string{{"to-source", "174.213.63.255-75.154.243.43"}})
	if err := r.Compile(); err != nil || !strings.Contains(r.Undecidable, "reversed address range") {
		t.Errorf("reversed range: %v, undecidable %q", err, r.Undecidable)
	}
	r = ruleOf(t, "DNAT", [][2]string{{"to-destination", "10.0.0.4"}, {"to-destination", "10.0.0.5"}})
	if err := r.Compile(); err != nil || !strings.Contains(r.Undecidable, "2 --to-destination") {
		t.Errorf("two ranges: %v, undecidable %q", err, r.Undecidable)
	}
}

func TestMarkSetApply(t *testing.T) {
	for _, c := range []struct {
		m        topology.MarkSet
		in, want uint32
	}{
		{topology.MarkSet{Op: topology.MarkXSet, Value: 0x100, Mask: 0xffffffff}, 0x5, 0x100},
		{topology.MarkSet{Op: topology.MarkXSet, Value: 0x1, Mask: 0x1}, 0x100, 0x101},
		{topology.MarkSet{Op: topology.MarkXSet, Value: 0x1, Mask: 0}, 0x101, 0x100}, // xor
		{topology.MarkSet{Op: topology.MarkSetBits, Value: 0x1, Mask: 0x1}, 0x100, 0x101},
		{topology.MarkSet{Op: topology.MarkOr, Value: 0x10}, 0x1, 0x11},
		{topology.MarkSet{Op: topology.MarkAnd, Value: 0xf0}, 0x1f, 0x10},
		{topology.MarkSet{Op: topology.MarkXor, Value: 0x3}, 0x1, 0x2},
	} {
		if got := c.m.Apply(c.in); got != c.want {
			t.Errorf("%+v.Apply(%#x) = %#x, want %#x", c.m, c.in, got, c.want)
		}
	}
}

// TestCompileRefusesWhatIptablesRefuses: the other arguments iptables
// itself would refuse (so no kernel holds such a rule): interface names,
// protocols and the statistic match's counts.
func TestCompileRefusesWhatIptablesRefuses(t *testing.T) {
	stat := func(opts ...string) *topology.Rule {
		m := topology.Match{Name: "statistic"}
		for i := 0; i < len(opts); i += 2 {
			m.Opts = append(m.Opts, opt(opts[i], opts[i+1]))
		}
		return ruleOf(t, "ACCEPT", nil, m)
	}
	hdr := func(iface, proto string) *topology.Rule {
		r := ruleOf(t, "ACCEPT", nil)
		if iface != "" {
			r.InIface = &topology.Negatable{Value: iface}
		}
		if proto != "" {
			r.Proto = &topology.Negatable{Value: proto}
		}
		return r
	}
	for _, c := range []struct {
		r    *topology.Rule
		want string
	}{
		{hdr("averyveryverylongname0", ""), `-i "averyveryverylongname0": not an interface name`},
		{hdr("a/b", ""), `-i "a/b": not an interface name`},
		{hdr("", "300"), `-p "300": protocol number out of range`},
		{hdr("", "t*p"), `-p "t*p": not a protocol`},
		{stat("mode", "nth", "every", "0", "packet", "0"), `--every "0"`},
		{stat("mode", "nth", "every", "2", "packet", "2"), `--packet "2"`},
		{stat("mode", "nth", "every", "2", "packet", "-1"), `--packet "-1"`},
		{stat("mode", "random", "probability", "1.5"), `--probability "1.5"`},
		{stat("mode", "random", "probability", "NaN"), `--probability "NaN"`},
	} {
		if err := c.r.Compile(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	for _, r := range []*topology.Rule{hdr("veth+", "gre"), hdr("eth0.5", "47"), stat("mode", "nth", "every", "3", "packet", "2"),
		stat("mode", "random", "probability", "0.50000000000")} {
		if err := r.Compile(); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
}
