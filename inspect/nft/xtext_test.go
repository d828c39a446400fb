package nft

import (
	"regexp"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/inspect/parse"
)

// Info structs of the bpf, policy and u32 matches built by hand from the
// kernel's xt_bpf.h, xt_policy.h and xt_u32.h (x86-64), checked against
// what libxt_bpf.c, libxt_policy.c and libxt_u32.c save.

// sockFilter is struct sock_filter.
type sockFilter struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

func putProg(b []byte, prog []sockFilter) {
	for i, f := range prog {
		o := 8 * i
		ne.PutUint16(b[o:], f.code)
		b[o+2], b[o+3] = f.jt, f.jf
		ne.PutUint32(b[o+4:], f.k)
	}
}

// bpfInfo0 is struct xt_bpf_info (528 bytes): __u16 num; sock_filter[64] at 4.
func bpfInfo0(prog []sockFilter) []byte {
	b := make([]byte, 528)
	ne.PutUint16(b, uint16(len(prog)))
	putProg(b[4:], prog)
	return b
}

// bpfInfo1 is struct xt_bpf_info_v1 (528 bytes): __u16 mode, num; __s32 fd;
// union { sock_filter[64]; char path[512]; } at 8.
func bpfInfo1(mode uint16, prog []sockFilter, path string) []byte {
	b := make([]byte, 528)
	ne.PutUint16(b, mode)
	ne.PutUint16(b[2:], uint16(len(prog)))
	ne.PutUint32(b[4:], 5) // the fd iptables passed; meaningless when read back
	putProg(b[8:], prog)
	if path != "" {
		copy(b[8:], path)
	}
	return b
}

// dockerProg is the VNI 4097 program of testdata/encrypted.rules.
var dockerProg = []sockFilter{{32, 0, 0, 4294963252}, {7, 0, 0, 0}, {64, 0, 0, 4}, {116, 0, 0, 8},
	{21, 1, 0, 4097}, {6, 0, 0, 0}, {6, 0, 0, 4294967295}}

// policyElem is struct xt_policy_elem (76 bytes).
type policyElem struct {
	saddr, smask, daddr, dmask string
	spi, reqid                 uint32
	proto, mode                uint8
	match, invert              uint8 // xt_policy_spec bits: saddr 1, daddr 2, proto 4, mode 8, spi 16, reqid 32
}

const (
	polSaddr = 1 << iota
	polDaddr
	polProto
	polMode
	polSPI
	polReqid
)

// policyInfo is struct xt_policy_info (312 bytes): pol[4] of 76 bytes,
// __u16 flags at 304, __u16 len at 306.
func policyInfo(flags uint16, elems ...policyElem) []byte {
	b := make([]byte, 312)
	for i, e := range elems {
		o := 76 * i
		for j, a := range []string{e.saddr, e.smask, e.daddr, e.dmask} {
			if a != "" {
				copy(b[o+16*j:], ip(a))
			}
		}
		ne.PutUint32(b[o+64:], e.spi)
		ne.PutUint32(b[o+68:], e.reqid)
		b[o+72], b[o+73], b[o+74], b[o+75] = e.proto, e.mode, e.match, e.invert
	}
	ne.PutUint16(b[304:], flags)
	ne.PutUint16(b[306:], uint16(len(elems)))
	return b
}

// u32Test is struct xt_u32_test: locations (number, nextop of the
// number's operator), values (min, max).
type u32Test struct {
	loc [][2]uint32
	val [][2]uint32
}

// u32Info is struct xt_u32 (1984 bytes): tests[11] of 180 bytes
// (location[11] of 8, value[11] of 8 at 88, nnums at 176, nvalues at 177),
// ntests at 1980, invert at 1981.
func u32Info(invert bool, tests ...u32Test) []byte {
	b := make([]byte, 1984)
	for i, tt := range tests {
		o := 180 * i
		for j, l := range tt.loc {
			ne.PutUint32(b[o+8*j:], l[0])
			b[o+8*j+4] = byte(l[1])
		}
		for j, v := range tt.val {
			ne.PutUint32(b[o+88+8*j:], v[0])
			ne.PutUint32(b[o+88+8*j+4:], v[1])
		}
		b[o+176], b[o+177] = byte(len(tt.loc)), byte(len(tt.val))
	}
	b[1980] = byte(len(tests))
	if invert {
		b[1981] = 1
	}
	return b
}

func TestXTExtensionMatches(t *testing.T) {
	dockerSave := ` -m bpf --bytecode "7,32 0 0 4294963252,7 0 0 0,64 0 0 4,116 0 0 8,21 1 0 4097,6 0 0 0,6 0 0 4294967295"`
	cases := []xtCase{
		{"bpf rev 1 (Docker's VNI match)", &XTMatch{Name: "bpf", Rev: 1, Info: bpfInfo1(0, dockerProg, "")}, dockerSave},
		{"bpf rev 0", &XTMatch{Name: "bpf", Info: bpfInfo0(dockerProg)}, dockerSave},
		{"bpf rev 1 one instruction", &XTMatch{Name: "bpf", Rev: 1, Info: bpfInfo1(0, []sockFilter{{6, 0, 0, 65535}}, "")},
			` -m bpf --bytecode "1,6 0 0 65535"`},
		{"bpf rev 1 full program", &XTMatch{Name: "bpf", Rev: 1, Info: bpfInfo1(0, func() []sockFilter {
			p := make([]sockFilter, 64)
			for i := range p {
				p[i] = sockFilter{21, 255, 254, uint32(i)}
			}
			return p
		}(), "")}, ` -m bpf --bytecode "64,` + func() string {
			var s []string
			for i := 0; i < 64; i++ {
				s = append(s, "21 255 254 "+itoa(i))
			}
			return strings.Join(s, ",")
		}() + `"`},
		{"bpf rev 1 pinned", &XTMatch{Name: "bpf", Rev: 1, Info: bpfInfo1(1, nil, "/sys/fs/bpf/vni")},
			" -m bpf --object-pinned /sys/fs/bpf/vni"},

		{"policy (Docker's cleartext VXLAN drop)", &XTMatch{Name: "policy", Info: policyInfo(1 | 4)},
			" -m policy --dir in --pol none"},
		{"policy out none", &XTMatch{Name: "policy", Info: policyInfo(2 | 4)}, " -m policy --dir out --pol none"},
		{"policy ipsec one element, all options", &XTMatch{Name: "policy", Info: policyInfo(2, policyElem{
			saddr: "10.0.0.0", smask: "255.0.0.0", daddr: "192.0.2.1", dmask: "255.255.255.255",
			spi: 0x1000, reqid: 13681891, proto: 50, mode: 1,
			match: polSaddr | polDaddr | polProto | polMode | polSPI | polReqid, invert: polSPI | polDaddr})},
			" -m policy --dir out --pol ipsec --reqid 13681891 ! --spi 0x1000 --proto esp --mode tunnel ! --tunnel-dst 192.0.2.1 --tunnel-src 10.0.0.0/8"},
		{"policy strict, elements, dotted mask", &XTMatch{Name: "policy", Info: policyInfo(1|8,
			policyElem{proto: 51, match: polProto, invert: polProto},
			policyElem{mode: 0, match: polMode},
			policyElem{saddr: "10.0.0.0", smask: "255.0.255.0", mode: 1, match: polSaddr | polMode},
			policyElem{reqid: 0, proto: 108, match: polReqid | polProto})},
			" -m policy --dir in --pol ipsec --strict ! --proto ah --next --mode transport --next --mode tunnel --tunnel-src 10.0.0.0/255.0.255.0 --next --reqid 0 --proto ipcomp"},
		{"policy unknown mode and protocol", &XTMatch{Name: "policy", Info: policyInfo(1, policyElem{mode: 7, proto: 253,
			match: polMode | polProto})}, " -m policy --dir in --pol ipsec --proto 253 --mode ???"},

		{"u32 (Docker 23's VNI match)", &XTMatch{Name: "u32", Info: u32Info(false, u32Test{
			loc: [][2]uint32{{0, 0}, {22, 2}, {0x3c, 0}, {12, 3}, {0xffffff00, 0}}, val: [][2]uint32{{0x100100, 0x100100}}})},
			` -m u32 --u32 "0x0>>0x16&0x3c@0xc&0xffffff00=0x100100"`},
		{"u32 inverted, tests, ranges, lists, shift left", &XTMatch{Name: "u32", Info: u32Info(true,
			u32Test{loc: [][2]uint32{{6, 0}, {0xff, 0}}, val: [][2]uint32{{1, 1}, {6, 17}}},
			u32Test{loc: [][2]uint32{{4, 0}, {1, 1}}, val: [][2]uint32{{0, 0xffffffff}}})},
			` -m u32 ! --u32 "0x6&0xff=0x1,0x6:0x11&&0x4<<0x1=0x0:0xffffffff"`},
	}
	runXTCases(t, nil, cases)
}

// TestXTExtensionMatchesBad: what iptables-save itself refuses or the
// kernel never holds stays undecoded, readably.
func TestXTExtensionMatchesBad(t *testing.T) {
	for _, x := range []*XTMatch{
		{Name: "bpf", Rev: 1, Info: make([]byte, 100)},
		{Name: "bpf", Rev: 1, Info: bpfInfo1(2, nil, "x")},                                         // XT_BPF_MODE_FD_ELF: "unknown bpf mode"
		{Name: "bpf", Rev: 1, Info: bpfInfo1(0, nil, "")},                                          // no instructions
		{Name: "bpf", Info: func() []byte { b := bpfInfo0(nil); ne.PutUint16(b, 65); return b }()}, // > 64
		{Name: "bpf", Rev: 2, Info: make([]byte, 528)},
		{Name: "policy", Info: make([]byte, 300)},
		{Name: "policy", Info: func() []byte { b := policyInfo(1); ne.PutUint16(b[306:], 5); return b }()},
		{Name: "policy", Rev: 1, Info: policyInfo(1 | 4)},
		{Name: "u32", Info: make([]byte, 1000)},
		{Name: "u32", Info: func() []byte { b := u32Info(false); b[1980] = 12; return b }()},
		{Name: "u32", Info: func() []byte {
			b := u32Info(false, u32Test{loc: [][2]uint32{{0, 0}}, val: [][2]uint32{{0, 0}}})
			b[176] = 12
			return b
		}()},
	} {
		got, probs := matchText(t, x)
		if len(probs) != 1 || !strings.Contains(got, undecodedOpt) {
			t.Errorf("%s rev %d: %q %q", x.Name, x.Rev, got, probs)
		}
	}
}

var hexRun = regexp.MustCompile(`[0-9a-fA-F]{24,}`)

// TestUndecodedReadable: a match or target that stays undecoded is one
// short readable marker naming it, its revision and its size, never a hex
// dump, in the rule text and in the reason; the rule text reads back
// through the iptables-save parser as a rule (with an unknown match the
// evaluator reports as such), not as an unparsed line.
func TestUndecodedReadable(t *testing.T) {
	cases := []struct {
		e                any
		wantText, reason string
	}{
		{&XTMatch{Name: "foo", Rev: 2, Info: make([]byte, 64)},
			`-A X -m foo --nft-undecoded "match foo rev 2 (64 bytes)"`, "match foo rev 2 (64 bytes): "},
		{&XTMatch{Name: "bpf", Rev: 1, Info: bpfInfo1(2, nil, "/x")},
			`-A X -m bpf --nft-undecoded "match bpf rev 1 (528 bytes)"`, "match bpf rev 1 (528 bytes): bpf mode 2"},
		{&XTTarget{Name: "TPROXY", Rev: 1, Info: make([]byte, 40)},
			`-A X -j TPROXY --nft-undecoded "target TPROXY rev 1 (40 bytes)"`, "target TPROXY rev 1 (40 bytes): "},
	}
	for _, c := range cases {
		r, probs := DecodeRule("X", []any{c.e}, nil)
		if r.Text != c.wantText {
			t.Errorf("text\n got  %s\n want %s", r.Text, c.wantText)
		}
		if len(probs) != 1 || !strings.Contains(probs[0], c.reason) || hexRun.MatchString(probs[0]) {
			t.Errorf("reason %q, want one naming %q without hex", probs, c.reason)
		}
		save := "*filter\n:X - [0:0]\n" + r.Text + "\nCOMMIT\n"
		fw, err := parse.IptablesSave("nft", strings.NewReader(save))
		if err != nil {
			t.Fatal(err)
		}
		if len(fw.Unparsed) > 0 || len(fw.Tables[0].Chains[0].Rules) != 1 {
			t.Fatalf("%s does not read back as a rule: %+v", r.Text, fw.Unparsed)
		}
		back := fw.Tables[0].Chains[0].Rules[0]
		if back.Render() != r.Text {
			t.Errorf("read back renders %s", back.Render())
		}
	}
	// The encrypted overlay's rule that used to carry a kilobyte of hex.
	_, probs := DecodeRule("X", []any{&XTMatch{Name: "bpf", Rev: 3, Info: bpfInfo1(0, dockerProg, "")}}, nil)
	if len(probs) != 1 || len(probs[0]) > 200 || hexRun.MatchString(probs[0]) {
		t.Errorf("reason %q", probs)
	}
}
