package nft

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
)

// Info structs built by hand from the kernel header layouts (x86-64).

// ctInfo builds xt_conntrack_mtinfo{1,2,3} with match flags, invert flags
// and a state mask; set fills more fields.
func ctInfo(rev uint32, flags, inv uint16, state uint16, set ...func(b []byte)) []byte {
	size := map[uint32]int{1: 152, 2: 160, 3: 168}[rev]
	b := make([]byte, size)
	ne.PutUint16(b[146:], flags)
	ne.PutUint16(b[148:], inv)
	if rev == 1 {
		b[150] = byte(state)
	} else {
		ne.PutUint16(b[150:], state)
	}
	for _, f := range set {
		f(b)
	}
	return b
}

// ipvsInfo builds struct xt_ipvs_mtinfo.
func ipvsInfo(bitmask, invert uint8, set ...func(b []byte)) []byte {
	b := make([]byte, 40)
	b[38], b[39] = invert, bitmask
	for _, f := range set {
		f(b)
	}
	return b
}

// xtCase is one xt match or target expression and the text iptables-save
// prints for it (after "-A X").
type xtCase struct {
	name string
	e    any
	want string
}

// runXTCases decodes each case's expression alone in a rule of chain X,
// with sets for the set match, and checks it decodes fully to want.
func runXTCases(t *testing.T, sets *SetNames, cases []xtCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, probs := decodeRule("X", []any{c.e}, nil, sets)
			if len(probs) > 0 {
				t.Fatalf("problems: %q", probs)
			}
			if got := strings.TrimPrefix(r.Text, "-A X"); got != c.want {
				t.Errorf("\n got  %q\n want %q", got, c.want)
			}
		})
	}
}

func matchText(t *testing.T, x *XTMatch) (string, []string) {
	t.Helper()
	r, probs := DecodeRule("X", []any{x}, nil)
	return strings.TrimPrefix(r.Text, "-A X"), probs
}

func TestXTMatches(t *testing.T) {
	cases := []xtCase{
		// ipvs: no kernel here can load -m ipvs; these pin the decoder to
		// xt_ipvs.h and libxt_ipvs.c's save format.
		{"ipvs property (Docker's SNAT rule)", &XTMatch{Name: "ipvs", Info: ipvsInfo(ipvsProperty, 0)}, " -m ipvs --ipvs"},
		{"not ipvs", &XTMatch{Name: "ipvs", Info: ipvsInfo(ipvsProperty, ipvsProperty)}, " -m ipvs ! --ipvs"},
		{"ipvs vaddr vport dir method", &XTMatch{Name: "ipvs", Info: ipvsInfo(
			ipvsProperty|ipvsVAddr|ipvsVPort|ipvsDir|ipvsMethod, ipvsVPort,
			func(b []byte) {
				copy(b[0:], ip("10.255.0.0"))
				copy(b[16:], ip("255.255.0.0"))
				binary.BigEndian.PutUint16(b[32:], 8080)
				b[35] = 0 // IP_VS_CONN_F_MASQ
			})},
			" -m ipvs --vaddr 10.255.0.0/16 ! --vport 8080 --vdir ORIGINAL --vmethod MASQ"},
		{"ipvs vproto vaddr/32 reply gate vportctl", &XTMatch{Name: "ipvs", Info: ipvsInfo(
			ipvsProperty|ipvsProto|ipvsVAddr|ipvsDir|ipvsMethod|ipvsVPortCtl, ipvsDir|ipvsProto|ipvsMethod,
			func(b []byte) {
				b[34] = 6
				copy(b[0:], ip("10.0.0.2"))
				copy(b[16:], ip("255.255.255.255"))
				b[35] = 3 // IP_VS_CONN_F_DROUTE
				binary.BigEndian.PutUint16(b[36:], 21)
			})},
			" -m ipvs ! --vproto 6 --vaddr 10.0.0.2 --vdir REPLY ! --vmethod GATE --vportctl 21"},
		{"ipvs ipip, dotted mask, unknown method", &XTMatch{Name: "ipvs", Info: ipvsInfo(
			ipvsProperty|ipvsVAddr|ipvsMethod, 0,
			func(b []byte) {
				copy(b[0:], ip("10.0.0.0"))
				copy(b[16:], ip("255.0.255.0"))
				b[35] = 2 // IP_VS_CONN_F_TUNNEL
			})},
			" -m ipvs --vaddr 10.0.0.0/255.0.255.0 --vmethod IPIP"},
		{"ipvs localnode method", &XTMatch{Name: "ipvs", Info: ipvsInfo(ipvsProperty|ipvsMethod, 0, func(b []byte) { b[35] = 1 })},
			" -m ipvs --vmethod UNKNOWN"},

		{"conntrack v1 ports in network order", &XTMatch{Name: "conntrack", Rev: 1, Info: ctInfo(1,
			ctState|ctProto|ctOrigDstPt|ctOrigSrc, ctOrigDstPt, 1<<3|1<<0, func(b []byte) {
				ne.PutUint16(b[136:], 17)
				binary.BigEndian.PutUint16(b[140:], 53)
				copy(b[0:], ip("10.0.0.0"))
				copy(b[16:], ip("255.255.255.0"))
			})},
			" -m conntrack --ctstate INVALID,NEW --ctproto 17 --ctorigsrc 10.0.0.0/24 ! --ctorigdstport 53"},
		{"conntrack v2 snat dnat untracked status expire", &XTMatch{Name: "conntrack", Rev: 2, Info: ctInfo(2,
			ctState|ctStatus|ctExpires|ctReplDst, ctStatus, 1<<6|1<<7|1<<8, func(b []byte) {
				ne.PutUint16(b[152:], 1<<1|1<<3)
				ne.PutUint32(b[128:], 10)
				ne.PutUint32(b[132:], 10)
				copy(b[96:], ip("1.2.3.4"))
				copy(b[112:], ip("255.255.255.255"))
			})},
			" -m conntrack --ctstate UNTRACKED,SNAT,DNAT --ctrepldst 1.2.3.4 ! --ctstatus SEEN_REPLY,CONFIRMED --ctexpire 10"},
		{"conntrack v3 port range, status none, dir", &XTMatch{Name: "conntrack", Rev: 3, Info: ctInfo(3,
			ctReplSrcPt|ctStatus|ctDirection, ctDirection, 0, func(b []byte) {
				ne.PutUint16(b[142:], 1000)
				ne.PutUint16(b[158:], 2000)
			})},
			" -m conntrack --ctreplsrcport 1000:2000 --ctstatus NONE --ctdir REPLY"},
		{"state alias (-m state)", &XTMatch{Name: "conntrack", Rev: 3, Info: ctInfo(3,
			ctState|ctStateAlias, ctState, 1<<0)}, " -m state ! --state INVALID"},

		{"addrtype rev 0", &XTMatch{Name: "addrtype", Info: func() []byte {
			b := make([]byte, 16)
			ne.PutUint16(b[0:], 1<<2)
			ne.PutUint16(b[2:], 1<<1|1<<5|1<<10)
			ne.PutUint32(b[8:], 1)
			return b
		}()}, " -m addrtype --src-type LOCAL ! --dst-type UNICAST,MULTICAST,NAT"},
		{"addrtype rev 1 limit out", &XTMatch{Name: "addrtype", Rev: 1, Info: func() []byte {
			b := make([]byte, 8)
			ne.PutUint16(b[2:], 1<<2)
			ne.PutUint32(b[4:], 2|8)
			return b
		}()}, " -m addrtype ! --dst-type LOCAL --limit-iface-out"},
		{"mark rev 1", &XTMatch{Name: "mark", Rev: 1, Info: append(append(he32(0x100), he32(0xffffffff)...), 1, 0, 0, 0)},
			" -m mark ! --mark 0x100"},
		{"mark rev 1 mask", &XTMatch{Name: "mark", Rev: 1, Info: append(append(he32(0x1), he32(0xf)...), 0, 0, 0, 0)},
			" -m mark --mark 0x1/0xf"},
		{"statistic random", &XTMatch{Name: "statistic", Info: func() []byte {
			b := make([]byte, 24)
			ne.PutUint16(b[2:], 1)
			ne.PutUint32(b[4:], 0x40000000)
			return b
		}()}, " -m statistic --mode random ! --probability 0.50000000000"},
		{"statistic nth", &XTMatch{Name: "statistic", Info: func() []byte {
			b := make([]byte, 24)
			ne.PutUint16(b[0:], 1)
			ne.PutUint32(b[4:], 2)
			ne.PutUint32(b[8:], 1)
			return b
		}()}, " -m statistic --mode nth --every 3 --packet 1"},
		{"multiport rev 1", &XTMatch{Name: "multiport", Rev: 1, Info: func() []byte {
			b := make([]byte, 48)
			b[0], b[1] = 1, 4
			for i, p := range []uint16{80, 8000, 8100, 443} {
				ne.PutUint16(b[2+2*i:], p)
			}
			b[32+1] = 1 // 8000:8100
			b[47] = 1
			return b
		}()}, " -m multiport ! --dports 80,8000:8100,443"},
		{"multiport rev 0", &XTMatch{Name: "multiport", Info: func() []byte {
			b := make([]byte, 32)
			b[0], b[1] = 2, 2
			ne.PutUint16(b[2:], 1)
			ne.PutUint16(b[4:], 2)
			return b
		}()}, " -m multiport --ports 1,2"},
		{"comment", &XTMatch{Name: "comment", Info: append([]byte("a comment"), make([]byte, 247)...)},
			` -m comment --comment "a comment"`},
		{"comment needing quotes", &XTMatch{Name: "comment", Info: append([]byte(`it's "a.b"`), make([]byte, 246)...)},
			` -m comment --comment "it\'s \"a.b\""`},
		{"bare comment", &XTMatch{Name: "comment", Info: append([]byte("web_ports-1"), make([]byte, 245)...)},
			` -m comment --comment web_ports-1`},
		{"xt tcp (with --tcp-option)", &XTMatch{Name: "tcp", Info: func() []byte {
			b := make([]byte, 12)
			ne.PutUint16(b[0:], 0)
			ne.PutUint16(b[2:], 0xffff)
			ne.PutUint16(b[4:], 5)
			ne.PutUint16(b[6:], 5)
			b[8], b[11] = 2, 0x02|0x08
			return b
		}()}, " -m tcp ! --dport 5 ! --tcp-option 2"},
		{"xt udp", &XTMatch{Name: "udp", Info: func() []byte {
			b := make([]byte, 10)
			ne.PutUint16(b[0:], 53)
			ne.PutUint16(b[2:], 53)
			ne.PutUint16(b[6:], 0xffff)
			b[8] = 1
			return b
		}()}, " -m udp ! --sport 53"},
	}
	runXTCases(t, nil, cases)
}

// TestXTMatchesBad: short or unknown Info structs are reported, the rule
// keeps a marked match.
func TestXTMatchesBad(t *testing.T) {
	for _, x := range []*XTMatch{
		{Name: "ipvs", Info: make([]byte, 39)},
		{Name: "conntrack", Rev: 3, Info: make([]byte, 100)},
		{Name: "conntrack", Rev: 4, Info: make([]byte, 200)},
		{Name: "addrtype", Rev: 2, Info: make([]byte, 8)},
		{Name: "statistic", Info: append([]byte{9, 0}, make([]byte, 22)...)},
		{Name: "multiport", Rev: 1, Info: append([]byte{1, 16}, make([]byte, 46)...)},
		{Name: "multiport", Rev: 1, Info: append([]byte{7, 1}, make([]byte, 46)...)},
		{Name: "mark", Rev: 1, Info: make([]byte, 4)},
		{Name: "tcp", Info: make([]byte, 3)},
		{Name: "udp", Info: nil},
		{Name: "state", Info: make([]byte, 4)},
	} {
		got, probs := matchText(t, x)
		if len(probs) != 1 || !strings.Contains(got, undecodedOpt) || !strings.Contains(probs[0], x.Name) {
			t.Errorf("%s rev %d: %q %q", x.Name, x.Rev, got, probs)
		}
	}
}

func targetText(t *testing.T, x *XTTarget) (string, []string) {
	t.Helper()
	r, probs := DecodeRule("X", []any{x}, nil)
	return strings.TrimPrefix(r.Text, "-A X"), probs
}

func TestXTTargets(t *testing.T) {
	cases := []xtCase{
		{"DNAT rev 2 range, offset, flags", &XTTarget{Name: "DNAT", Rev: 2,
			Info: natInfo2(natMapIPs|natProtoSpecified|natProtoOffset|natRandom|natPersistent|natRandomFully, "1.2.3.4", "1.2.3.9", 1000, 2000, 100)},
			" -j DNAT --to-destination 1.2.3.4-1.2.3.9:1000-2000/100 --random --random-fully --persistent"},
		{"DNAT rev 2 port only", &XTTarget{Name: "DNAT", Rev: 2, Info: natInfo2(natProtoSpecified, "", "", 80, 80, 0)},
			" -j DNAT --to-destination :80"},
		{"DNAT rev 1", &XTTarget{Name: "DNAT", Rev: 1, Info: natInfo2(natMapIPs, "10.0.0.1", "10.0.0.1", 0, 0, 0)[:40]},
			" -j DNAT --to-destination 10.0.0.1"},
		{"DNAT rev 0", &XTTarget{Name: "DNAT", Info: natInfo0(natMapIPs|natProtoSpecified, "10.0.0.1", "10.0.0.1", 53, 53)},
			" -j DNAT --to-destination 10.0.0.1:53"},
		{"SNAT rev 0", &XTTarget{Name: "SNAT", Info: natInfo0(natMapIPs, "10.255.0.2", "10.255.0.2", 0, 0)},
			" -j SNAT --to-source 10.255.0.2"},
		{"SNAT rev 0 port only", &XTTarget{Name: "SNAT", Info: natInfo0(natProtoSpecified|natRandomFully, "", "", 53, 53)},
			" -j SNAT --to-source :53 --random-fully"},
		{"MASQUERADE ports", &XTTarget{Name: "MASQUERADE", Info: natInfo0(natProtoSpecified|natRandom, "", "", 1000, 2000)},
			" -j MASQUERADE --to-ports 1000-2000 --random"},
		{"REDIRECT plain", &XTTarget{Name: "REDIRECT", Info: natInfo0(0, "", "", 0, 0)}, " -j REDIRECT"},
		{"MARK", &XTTarget{Name: "MARK", Rev: 2, Info: append(he32(0), he32(0xfffffffa)...)}, " -j MARK --set-xmark 0x0/0xfffffffa"},
		{"REJECT", &XTTarget{Name: "REJECT", Info: he32(7)}, " -j REJECT --reject-with tcp-reset"},
		{"REJECT default", &XTTarget{Name: "REJECT", Info: he32(3)}, " -j REJECT --reject-with icmp-port-unreachable"},
		{"LOG", &XTTarget{Name: "LOG", Info: func() []byte {
			b := make([]byte, 32)
			b[0], b[1] = 4, 0x01|0x20
			copy(b[2:], "DROP: ")
			return b
		}()}, ` -j LOG --log-prefix "DROP: " --log-tcp-sequence --log-macdecode`},
		{"LOG level", &XTTarget{Name: "LOG", Info: func() []byte {
			b := make([]byte, 32)
			b[0] = 7
			return b
		}()}, " -j LOG --log-level 7"},
	}
	runXTCases(t, nil, cases)
}

func TestXTTargetsBad(t *testing.T) {
	for _, x := range []*XTTarget{
		{Name: "DNAT", Rev: 2, Info: make([]byte, 41)},
		{Name: "DNAT", Rev: 3, Info: make([]byte, 48)},
		{Name: "SNAT", Info: make([]byte, 10)},
		{Name: "MARK", Rev: 1, Info: make([]byte, 16)},
		{Name: "MARK", Rev: 2, Info: make([]byte, 4)},
		{Name: "REJECT", Info: he32(4)},
		{Name: "REJECT", Rev: 1, Info: he32(3)},
		{Name: "REJECT", Info: nil},
		{Name: "LOG", Info: make([]byte, 8)},
		{Name: "LOG", Rev: 1, Info: make([]byte, 32)},
		{Name: "TPROXY", Info: make([]byte, 32)},
	} {
		got, probs := targetText(t, x)
		if len(probs) != 1 || !strings.Contains(got, "-j "+x.Name+" --"+undecodedOpt) {
			t.Errorf("%s rev %d: %q %q", x.Name, x.Rev, got, probs)
		}
	}
}

// The ipvs match Docker adds in the ingress sandbox, as a whole rule.
func TestDockerIPVSRule(t *testing.T) {
	r, probs := DecodeRule("POSTROUTING", cat(
		pl(expr.PayloadBaseNetworkHeader, 16, 2), cmpEq(10, 255),
		&XTMatch{Name: "ipvs", Info: ipvsInfo(ipvsProperty, 0)}, counter,
		&XTTarget{Name: "SNAT", Info: natInfo0(natMapIPs, "10.255.0.2", "10.255.0.2", 0, 0)}), nil)
	want := "-A POSTROUTING -d 10.255.0.0/16 -m ipvs --ipvs -j SNAT --to-source 10.255.0.2"
	if len(probs) > 0 || r.Text != want {
		t.Errorf("%s %q", r.Text, probs)
	}
	if m := r.Match("ipvs"); m == nil || m.Opt("ipvs") == nil {
		t.Errorf("ipvs match %+v", r.Matches)
	}
}
