package nft

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/meshtrace/meshtrace/topology"
)

// Expression builders in the shapes iptables-nft 1.8.9 emits (checked
// against `nft --debug=netlink list ruleset`).

func metaLoad(k expr.MetaKey) *expr.Meta { return &expr.Meta{Key: k, Register: 1} }

func pl(base expr.PayloadBase, off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n}
}

func cmpOp(op expr.CmpOp, b ...byte) *expr.Cmp { return &expr.Cmp{Op: op, Register: 1, Data: b} }
func cmpEq(b ...byte) *expr.Cmp                { return cmpOp(expr.CmpOpEq, b...) }
func cmpNeq(b ...byte) *expr.Cmp               { return cmpOp(expr.CmpOpNeq, b...) }

func bitwise(mask ...byte) *expr.Bitwise {
	return &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func he32(v uint32) []byte { return ne.AppendUint32(nil, v) }
func ip(s string) []byte   { a := netip.MustParseAddr(s).As4(); return a[:] }

var (
	l4tcp   = []any{metaLoad(expr.MetaKeyL4PROTO), cmpEq(6)}
	l4udp   = []any{metaLoad(expr.MetaKeyL4PROTO), cmpEq(17)}
	counter = &expr.Counter{Packets: 3, Bytes: 180}
	accept  = &expr.Verdict{Kind: expr.VerdictAccept}
)

func dport(op expr.CmpOp, p uint16) []any {
	return []any{pl(expr.PayloadBaseTransportHeader, 2, 2), cmpOp(op, be16(p)...)}
}
func sport(op expr.CmpOp, p uint16) []any {
	return []any{pl(expr.PayloadBaseTransportHeader, 0, 2), cmpOp(op, be16(p)...)}
}

func ifaceCmp(k expr.MetaKey, op expr.CmpOp, name string, exact bool) []any {
	b := []byte(name)
	if exact {
		b = append(b, 0)
	}
	return []any{metaLoad(k), cmpOp(op, b...)}
}

func cat(parts ...any) []any {
	var out []any
	for _, p := range parts {
		if s, ok := p.([]any); ok {
			out = append(out, s...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// natInfo2 is struct nf_nat_range2.
func natInfo2(flags uint32, min, max string, pmin, pmax, base uint16) []byte {
	b := make([]byte, 48)
	ne.PutUint32(b[0:], flags)
	if min != "" {
		copy(b[4:], ip(min))
		copy(b[20:], ip(max))
	}
	binary.BigEndian.PutUint16(b[36:], pmin)
	binary.BigEndian.PutUint16(b[38:], pmax)
	binary.BigEndian.PutUint16(b[40:], base)
	return b
}

// natInfo0 is struct nf_nat_ipv4_multi_range_compat with one range.
func natInfo0(flags uint32, min, max string, pmin, pmax uint16) []byte {
	b := make([]byte, 24)
	ne.PutUint32(b[0:], 1)
	ne.PutUint32(b[4:], flags)
	if min != "" {
		copy(b[8:], ip(min))
		copy(b[12:], ip(max))
	}
	binary.BigEndian.PutUint16(b[16:], pmin)
	binary.BigEndian.PutUint16(b[18:], pmax)
	return b
}

func TestDecodeRule(t *testing.T) {
	cases := []struct {
		name  string
		chain string
		exprs []any
		want  string
		probs int
	}{
		{"docker ingress dnat", "DOCKER-INGRESS",
			cat(l4tcp, dport(expr.CmpOpEq, 8080), counter,
				&XTTarget{Name: "DNAT", Rev: 2, Info: natInfo2(natMapIPs|natProtoSpecified, "172.18.0.2", "172.18.0.2", 8080, 8080, 0)}),
			"-A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080", 0},
		{"gwbridge masquerade", "POSTROUTING",
			cat(ifaceCmp(expr.MetaKeyOIFNAME, expr.CmpOpNeq, "docker_gwbridge", true),
				pl(expr.PayloadBaseNetworkHeader, 12, 2), cmpEq(172, 18), counter,
				&XTTarget{Name: "MASQUERADE", Info: natInfo0(0, "", "", 0, 0)}),
			"-A POSTROUTING -s 172.18.0.0/16 ! -o docker_gwbridge -j MASQUERADE", 0},
		{"mark and vip", "INPUT",
			cat(pl(expr.PayloadBaseNetworkHeader, 16, 4), cmpEq(ip("10.255.0.5")...), counter,
				&XTTarget{Name: "MARK", Rev: 2, Info: append(he32(0x100), he32(0xffffffff)...)}),
			"-A INPUT -d 10.255.0.5/32 -j MARK --set-xmark 0x100/0xffffffff", 0},
		{"redirect", "PREROUTING",
			cat(l4tcp, pl(expr.PayloadBaseNetworkHeader, 16, 4), cmpEq(ip("10.255.0.7")...), dport(expr.CmpOpEq, 8080), counter,
				&XTTarget{Name: "REDIRECT", Info: natInfo0(natProtoSpecified, "", "", 80, 80)}),
			"-A PREROUTING -d 10.255.0.7/32 -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80", 0},
		{"wildcard iface and proto number", "FORWARD",
			cat(ifaceCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, "veth", false), metaLoad(expr.MetaKeyL4PROTO), cmpNeq(47), counter, accept),
			"-A FORWARD -i veth+ ! -p gre -j ACCEPT", 0},
		{"non-contiguous mask", "INPUT",
			cat(pl(expr.PayloadBaseNetworkHeader, 12, 4), bitwise(255, 0, 255, 0), cmpNeq(10, 0, 2, 0), counter),
			"-A INPUT ! -s 10.0.2.0/255.0.255.0", 0},
		{"non byte-aligned prefix", "INPUT",
			cat(pl(expr.PayloadBaseNetworkHeader, 16, 4), bitwise(255, 255, 240, 0), cmpEq(10, 1, 16, 0), counter),
			"-A INPUT -d 10.1.16.0/20", 0},
		{"fragments", "INPUT",
			cat(pl(expr.PayloadBaseNetworkHeader, 6, 2), bitwise(0x1f, 0xff), cmpNeq(0, 0), counter,
				&expr.Verdict{Kind: expr.VerdictDrop}),
			"-A INPUT -f -j DROP", 0},
		{"not fragments", "INPUT",
			cat(metaLoad(expr.MetaKeyL4PROTO), cmpEq(1), pl(expr.PayloadBaseNetworkHeader, 6, 2), bitwise(0x1f, 0xff), cmpEq(0, 0), counter),
			"-A INPUT -p icmp ! -f", 0},
		{"sport and dport folded", "T",
			cat(l4tcp, pl(expr.PayloadBaseTransportHeader, 0, 4), cmpNeq(0, 1, 0, 2), counter),
			"-A T -p tcp -m tcp ! --sport 1 ! --dport 2", 0},
		{"port ranges", "T",
			cat(l4tcp, sport(expr.CmpOpGt, 2000), pl(expr.PayloadBaseTransportHeader, 2, 2),
				&expr.Range{Op: expr.CmpOpNeq, Register: 1, FromData: be16(1024), ToData: be16(65535)}, counter),
			"-A T -p tcp -m tcp --sport 2001:65535 ! --dport 1024:65535", 0},
		{"lte and gte", "T",
			cat(l4udp, sport(expr.CmpOpLte, 1024), dport(expr.CmpOpGte, 5), counter),
			"-A T -p udp -m udp --sport 0:1024 --dport 5:65535", 0},
		{"lt", "T",
			cat(l4udp, dport(expr.CmpOpLt, 100), counter),
			"-A T -p udp -m udp --dport 0:99", 0},
		{"full range prints nothing", "T",
			cat(l4tcp, pl(expr.PayloadBaseTransportHeader, 0, 2),
				&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be16(0), ToData: be16(65535)}, counter),
			"-A T -p tcp -m tcp", 0},
		{"tcp flags", "T",
			cat(l4tcp, pl(expr.PayloadBaseTransportHeader, 13, 1), bitwise(0x17), cmpEq(0x02), dport(expr.CmpOpEq, 22), counter),
			"-A T -p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN", 0},
		{"ports merge into the first tcp match", "T",
			cat(l4tcp, &XTMatch{Name: "conntrack", Rev: 3, Info: ctInfo(3, ctState, 0, 1<<1|1<<2)},
				dport(expr.CmpOpEq, 5), sport(expr.CmpOpEq, 6), counter, accept),
			"-A T -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -m tcp --sport 6 --dport 5 -j ACCEPT", 0},
		{"mark match", "T",
			cat(metaLoad(expr.MetaKeyMARK), bitwise(he32(0xff)...), cmpEq(he32(0x10)...),
				metaLoad(expr.MetaKeyMARK), cmpNeq(he32(7)...), counter),
			"-A T -m mark --mark 0x10/0xff -m mark ! --mark 0x7", 0},
		{"goto", "A", cat(counter, &expr.Verdict{Kind: expr.VerdictGoto, Chain: "B"}), "-A A -g B", 0},
		{"jump and return", "A", cat(counter, &expr.Verdict{Kind: expr.VerdictJump, Chain: "DOCKER"}), "-A A -j DOCKER", 0},
		{"no target", "A", cat(counter), "-A A", 0},
		{"lone meta load (-i +)", "A", cat(metaLoad(expr.MetaKeyIIFNAME), counter), "-A A", 0},

		// What cannot be decoded is kept, marked and reported.
		{"unknown expression", "A",
			cat(l4tcp, &UnknownExpr{Name: "lookup"}, counter, accept),
			"-A A -p tcp -m nft --nft-undecoded lookup -j ACCEPT", 1},
		{"ports without protocol", "A",
			cat(dport(expr.CmpOpEq, 80), counter, accept),
			"-A A -m nft --nft-undecoded transport -j ACCEPT", 1},
		{"ports with negated protocol", "A",
			cat(metaLoad(expr.MetaKeyL4PROTO), cmpNeq(6), dport(expr.CmpOpEq, 80), counter),
			"-A A ! -p tcp -m nft --nft-undecoded transport", 1},
		{"ttl payload", "A",
			cat(pl(expr.PayloadBaseNetworkHeader, 8, 1), cmpEq(5), counter, accept),
			"-A A -m nft --nft-undecoded payload -j ACCEPT", 1},
		{"register mismatch", "A",
			cat(pl(expr.PayloadBaseNetworkHeader, 12, 4), &expr.Cmp{Op: expr.CmpOpEq, Register: 2, Data: ip("1.2.3.4")}, counter),
			"-A A -m nft --nft-undecoded cmp", 1},
		{"immediate data", "A",
			cat(&expr.Immediate{Register: 1, Data: []byte{1}}, counter),
			"-A A -m nft --nft-undecoded immediate", 1},
		{"meta set", "A",
			cat(&expr.Immediate{Register: 1, Data: he32(1)}, &expr.Meta{Key: expr.MetaKeyNFTRACE, Register: 1, SourceRegister: true}, counter),
			"-A A -m nft --nft-undecoded immediate -m nft --nft-undecoded meta-set", 2},
		{"unknown xt match", "A",
			cat(&XTMatch{Name: "hashlimit", Rev: 3, Info: []byte{1, 2}}, counter, accept),
			`-A A -m hashlimit --nft-undecoded "match hashlimit rev 3 (2 bytes)" -j ACCEPT`, 1},
		{"unknown xt target", "A",
			cat(counter, &XTTarget{Name: "CT", Rev: 2, Info: []byte{1}}),
			`-A A -j CT --nft-undecoded "target CT rev 2 (1 bytes)"`, 1},
		{"two verdicts", "A",
			cat(counter, accept, &expr.Verdict{Kind: expr.VerdictDrop}),
			"-A A -j DROP", 1},
		{"queue verdict", "A",
			cat(counter, &expr.Verdict{Kind: expr.VerdictQueue}),
			"-A A -m nft --nft-undecoded verdict", 1},
		{"unexpected type", "A", cat(&expr.Log{}), "-A A -m nft --nft-undecoded *expr.Log", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, probs := DecodeRule(c.chain, c.exprs, nil)
			if r.Text != c.want {
				t.Errorf("text\n got  %s\n want %s", r.Text, c.want)
			}
			if r.Text != r.Render() {
				t.Errorf("Text is not Render()")
			}
			if len(probs) != c.probs {
				t.Errorf("problems %q, want %d", probs, c.probs)
			}
		})
	}
}

func TestDecodeRuleStructured(t *testing.T) {
	r, probs := DecodeRule("DOCKER-INGRESS", cat(l4tcp, dport(expr.CmpOpEq, 8080), counter,
		&XTTarget{Name: "DNAT", Rev: 2, Info: natInfo2(natMapIPs|natProtoSpecified, "172.18.0.2", "172.18.0.2", 8080, 8080, 0)}), nil)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	want := topology.Rule{
		Chain: "DOCKER-INGRESS", Text: r.Text, HasCounters: true, Packets: 3, Bytes: 180,
		Proto:      &topology.Negatable{Value: "tcp"},
		Matches:    []topology.Match{{Name: "tcp", Opts: []topology.Option{{Name: "dport", Args: []string{"8080"}}}}},
		Target:     "DNAT",
		TargetOpts: []topology.Option{{Name: "to-destination", Args: []string{"172.18.0.2:8080"}}},
	}
	if got := *r; !equalRule(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func equalRule(a, b topology.Rule) bool {
	return a.Render() == b.Render() && a.Chain == b.Chain && a.HasCounters == b.HasCounters &&
		a.Packets == b.Packets && a.Bytes == b.Bytes && a.Goto == b.Goto
}

func TestDecodeRuleUserDataComment(t *testing.T) {
	// NFTNL_UDATA_RULE_COMMENT: type 0, length, NUL-terminated string.
	udata := append([]byte{0, 6}, "hello\x00"...)
	r, probs := DecodeRule("A", cat(counter, accept), udata)
	if len(probs) > 0 || r.Text != "-A A -m comment --comment hello -j ACCEPT" {
		t.Errorf("%s %q", r.Text, probs)
	}
	if _, ok := udataComment([]byte{0, 9, 'x'}); ok {
		t.Errorf("truncated user data gave a comment")
	}
	if _, ok := udataComment([]byte{1, 1, 'x'}); ok {
		t.Errorf("non-comment user data gave a comment")
	}
}

func TestSaveAddr(t *testing.T) {
	for _, c := range []struct {
		addr, mask string
		want       string
	}{
		{"10.0.0.0", "255.0.0.0", "10.0.0.0/8"},
		{"10.2.3.4", "255.255.255.255", "10.2.3.4/32"},
		{"0.0.0.0", "128.0.0.0", "0.0.0.0/1"},
		{"0.0.0.0", "0.0.0.0", "0.0.0.0/0"},
		{"10.0.2.0", "255.0.255.0", "10.0.2.0/255.0.255.0"},
	} {
		var a, m [4]byte
		copy(a[:], ip(c.addr))
		copy(m[:], ip(c.mask))
		if got := saveAddr(a, m); got != c.want {
			t.Errorf("saveAddr(%s, %s) = %s, want %s", c.addr, c.mask, got, c.want)
		}
	}
	if got := numericAddrMask(ip("1.2.3.4"), ip("255.255.255.255")); got != "1.2.3.4" {
		t.Errorf("numeric /32: %s", got)
	}
}

func TestProtoName(t *testing.T) {
	m := readProtocols("testdata/protocols")
	if len(m) != 4 || m[47] != "gre" || m[1] != "icmp" || m[58] != "ipv6-icmp" || m[6] != "tcp" {
		t.Errorf("protocols file: %v", m)
	}
	if len(readProtocols("testdata/does-not-exist")) != 0 {
		t.Errorf("missing file should give no names")
	}
	for _, c := range []struct {
		p    uint8
		want string
	}{{47, "gre"}, {58, "ipv6-icmp"}, {17, "udp"}, {132, "sctp"}, {200, "200"}, {0, "all"}} {
		if got := protoNameIn(m, c.p); got != c.want {
			t.Errorf("protoNameIn(%d) = %s, want %s", c.p, got, c.want)
		}
	}
}

func TestSaveQuoted(t *testing.T) {
	for s, want := range map[string]bool{"": true, "abc_-1": false, "a.b": true, "a b": true, `it's`: true, "ÄB": true} {
		if got := saveQuoted(s); got != want {
			t.Errorf("saveQuoted(%q) = %v", s, got)
		}
	}
}
