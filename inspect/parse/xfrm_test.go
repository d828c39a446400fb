package parse

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

var cmpNetip = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

// TestXfrmPolicyRecorded: the policies of fixtures/cmdout/record-xfrm.sh,
// as `ip xfrm policy` and `ip -s xfrm policy` print them: Docker's out
// policies and the kinds Docker does not write.
func TestXfrmPolicyRecorded(t *testing.T) {
	plain, bad, err := XfrmPolicy("p", strings.NewReader(readFixture(t, cmdout("xfrm", "ip-xfrm-policy.txt"))))
	if err != nil || len(bad) > 0 {
		t.Fatalf("err %v, not understood %+v", err, bad)
	}
	stats, bad, err := XfrmPolicy("s", strings.NewReader(readFixture(t, cmdout("xfrm", "s-ip-xfrm-policy.txt"))))
	if err != nil || len(bad) > 0 {
		t.Fatalf("-s: err %v, not understood %+v", err, bad)
	}
	if len(plain) != 9 {
		t.Fatalf("%d policies, the script adds 9", len(plain))
	}
	// -s adds the kernel's index, and nothing else the model keeps.
	for i := range stats {
		if stats[i].Index == 0 {
			t.Errorf("-s policy %d: no index", i)
		}
		stats[i].Index = 0
	}
	if d := cmp.Diff(plain, stats, cmpNetip); d != "" {
		t.Errorf("ip xfrm policy vs ip -s xfrm policy (-plain +s):\n%s", d)
	}
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	docker := topology.XfrmPolicy{
		Sel: topology.XfrmSelector{Src: pfx("192.0.2.10/32"), Dst: pfx("192.0.2.11/32"), Proto: 17, DPort: 4789},
		Dir: topology.XfrmOut, Type: "main", Mark: &topology.XfrmMark{Value: 0xd0c4e3, Mask: 0xffffffff},
		Tmpls: []topology.XfrmTmpl{{Src: addr("192.0.2.10"), Dst: addr("192.0.2.11"), Proto: topology.XfrmESP,
			SPI: 0x5e4c7f1a, Reqid: 0xd0c4e3, Mode: topology.XfrmTransport}},
	}
	want := map[string]topology.XfrmPolicy{
		"docker": docker,
		"fwd optional": {Sel: topology.XfrmSelector{Src: pfx("10.1.0.0/16"), Dst: pfx("10.2.0.0/16")}, Dir: topology.XfrmFwd,
			Priority: 100, Type: "main", Tmpls: []topology.XfrmTmpl{{Src: addr("198.51.100.2"), Dst: addr("198.51.100.1"),
				Proto: topology.XfrmESP, Reqid: 7, Mode: topology.XfrmTunnel, Optional: true}}},
		"icmp block": {Sel: topology.XfrmSelector{Src: pfx("0.0.0.0/0"), Dst: pfx("203.0.113.0/24"), Proto: 1, SPort: 3, DPort: 4},
			Dir: topology.XfrmOut, Action: topology.XfrmBlock, Type: "main"},
		"gre key 70000": {Sel: topology.XfrmSelector{Src: pfx("0.0.0.0/0"), Dst: pfx("203.0.113.7/32"), Proto: 47, SPort: 1, DPort: 4464},
			Dir: topology.XfrmOut, Priority: 5, Type: "main", Tmpls: []topology.XfrmTmpl{{Src: addr("192.0.2.10"),
				Dst: addr("203.0.113.7"), Proto: topology.XfrmAH, SPI: 0x100, Reqid: 2}}},
		"flags": {Sel: topology.XfrmSelector{Src: pfx("0.0.0.0/0"), Dst: pfx("0.0.0.0/0"), Proto: 6, SPort: 22}, Dir: topology.XfrmIn,
			Type: "main", Flags: []string{"localok", "icmp"}},
		"ipv6 if_id": {Sel: topology.XfrmSelector{Src: pfx("fd00::/64"), Dst: pfx("fd00:1::/64"), Proto: 17}, Dir: topology.XfrmOut,
			Type: "main", IfID: 0x2a, Tmpls: []topology.XfrmTmpl{{Src: addr("fd00::1"), Dst: addr("fd00:1::1"),
				Proto: topology.XfrmESP, SPI: 0x200, Reqid: 3, Mode: topology.XfrmTunnel}}},
		"sub": {Sel: topology.XfrmSelector{Src: pfx("192.0.2.0/24"), Dst: pfx("192.0.2.0/24")}, Dir: topology.XfrmOut, Type: "sub",
			Tmpls: []topology.XfrmTmpl{{Src: addr("192.0.2.10"), Dst: addr("192.0.2.20"), Proto: topology.XfrmComp, Reqid: 4}}},
	}
	for name, w := range want {
		found := false
		for _, p := range plain {
			if cmp.Equal(p, w, cmpNetip) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no policy %+v among\n%+v", name, w, plain)
		}
	}
}

// The SAs of fixtures/cmdout/text-only/*-ip-xfrm-state.txt are written
// from iproute2's print code (ip/ipxfrm.c: xfrm_id_info_print,
// xfrm_state_info_print, xfrm_xfrma_print, __xfrm_algo_print,
// xfrm_selector_print, xfrm_lifetime_print, xfrm_stats_print), with what
// Docker does not write (a mark and an output mark, ESN, NAT-T
// encapsulation, an SA direction, auth-trunc with enc): this kernel has no
// ESP and refuses every SA (fixtures/cmdout/xfrm/state-refused.log).
// Docker's real SAs are in fixtures/swarm-vm28-xfrm.
var (
	// ip xfrm state, keys shown
	stateKeys = fixtureText("keys-ip-xfrm-state.txt")
	// ip -s xfrm state list nokeys of the first SA of stateKeys
	stateStats = fixtureText("s-nokeys-ip-xfrm-state.txt")
)

func fixtureText(name string) string {
	b, err := os.ReadFile(cmdout("text-only", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestXfrmState(t *testing.T) {
	got, bad, err := XfrmState("s", strings.NewReader(stateKeys))
	if err != nil || len(bad) > 0 {
		t.Fatalf("err %v, not understood %+v", err, bad)
	}
	addr, pfx := netip.MustParseAddr, netip.MustParsePrefix
	want := []topology.XfrmState{{
		Src: addr("192.0.2.10"), Dst: addr("192.0.2.11"), Proto: topology.XfrmESP, SPI: 0x5e4c7f1a, Reqid: 0xd0c4e3,
		Algos: []topology.XfrmAlgo{{Kind: topology.AlgoAEAD, Name: "rfc4106(gcm(aes))", KeyBits: 160, ICVBits: 64}},
		Sel:   &topology.XfrmSelector{Src: pfx("0.0.0.0/0"), Dst: pfx("0.0.0.0/0")},
	}, {
		Src: addr("198.51.100.1"), Dst: addr("198.51.100.2"), Proto: topology.XfrmESP, SPI: 0x101, Reqid: 7, Mode: topology.XfrmTunnel,
		ReplayWindow: 32, Flags: []string{"noecn", "af-unspec", "esn"},
		Mark: &topology.XfrmMark{Value: 0x10, Mask: 0xff}, OutputMark: &topology.XfrmMark{Value: 0x20, Mask: 0xf0},
		Algos: []topology.XfrmAlgo{{Kind: topology.AlgoAuthTrunc, Name: "hmac(sha256)", KeyBits: 256, TruncBits: 128},
			{Kind: topology.AlgoEnc, Name: "cbc(aes)", KeyBits: 128}},
		Encap: &topology.XfrmEncap{Type: "espinudp", SPort: 4500, DPort: 4500, OA: addr("0.0.0.0")},
		IfID:  7, Dir: topology.SADirOut,
		Sel: &topology.XfrmSelector{Src: pfx("10.1.0.0/16"), Dst: pfx("10.2.0.0/16"), Proto: 6, DPort: 443},
	}}
	if d := cmp.Diff(want, got, cmpNetip); d != "" {
		t.Errorf("states (-want +got):\n%s", d)
	}

	// -s and nokeys: the same SA with its counters and without its key.
	got, bad, err = XfrmState("s", strings.NewReader(stateStats))
	if err != nil || len(bad) > 0 || len(got) != 1 {
		t.Fatalf("-s: %d states, err %v, not understood %+v", len(got), err, bad)
	}
	w := want[0]
	w.Algos = []topology.XfrmAlgo{{Kind: topology.AlgoAEAD, Name: "rfc4106(gcm(aes))", ICVBits: 64}}
	w.Stats = &topology.XfrmSAStats{Bytes: 4620, Packets: 42, IntegrityFailed: 3}
	if d := cmp.Diff(w, got[0], cmpNetip); d != "" {
		t.Errorf("-s nokeys (-want +got):\n%s", d)
	}
}

// TestRedactXfrmKeys: no key survives, the lengths do, and the redacted
// output reads back to what the keyed one does.
func TestRedactXfrmKeys(t *testing.T) {
	red := string(RedactXfrmKeys([]byte(stateKeys)))
	for _, key := range []string{"0x000102030405", "0x00112233445566778899aabbccddeeff"} {
		if strings.Contains(red, key) {
			t.Errorf("a key survived:\n%s", red)
		}
	}
	if !strings.Contains(red, "\taead rfc4106(gcm(aes)) <<Keys hidden>> (160 bits) 64\n") {
		t.Errorf("the aead line:\n%s", red)
	}
	if again := string(RedactXfrmKeys([]byte(red))); again != red {
		t.Errorf("redacting twice changes it:\n%s", again)
	}
	keyed, _, err1 := XfrmState("k", strings.NewReader(stateKeys))
	hidden, bad, err2 := XfrmState("r", strings.NewReader(red))
	if err1 != nil || err2 != nil || len(bad) > 0 {
		t.Fatalf("%v %v %+v", err1, err2, bad)
	}
	if d := cmp.Diff(keyed, hidden, cmpNetip); d != "" {
		t.Errorf("keyed vs redacted (-keyed +redacted):\n%s", d)
	}
	// What carries no key is left as it was, byte for byte.
	if pol := readFixture(t, cmdout("xfrm", "s-ip-xfrm-policy.txt")); string(RedactXfrmKeys([]byte(pol))) != pol {
		t.Error("policies changed by the redaction")
	}
}

func TestXfrmLinesNotUnderstood(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		states   int
		reason   string
	}{
		{"unknown attribute", "src 1.1.1.1 dst 2.2.2.2\n\tproto esp spi 0x1 reqid 1 mode transport\n\tfrobnicate 3\n", 1, "unknown SA attribute"},
		{"bad first line", "src 1.1.1.1\n\tproto esp spi 0x1 reqid 1 mode transport\nsrc 1.1.1.1 dst 2.2.2.2\n", 1, "want an SA's first line"},
		{"truncated algorithm", "src 1.1.1.1 dst 2.2.2.2\n\taead (ERROR truncated)\n", 1, "truncated algorithm"},
		{"no mode", "src 1.1.1.1 dst 2.2.2.2\n\tproto esp spi 0x1 reqid 1\n", 1, "want proto P"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, bad, err := XfrmState("f", strings.NewReader(tc.in))
			if err != nil || len(got) != tc.states || len(bad) == 0 || !strings.Contains(bad[0].Reason, tc.reason) || bad[0].File != "f" {
				t.Errorf("%d states, not understood %+v, err %v; want %d and %q", len(got), bad, err, tc.states, tc.reason)
			}
		})
	}
	// Nothing understood at all: not ip xfrm output.
	if _, _, err := XfrmPolicy("f", strings.NewReader("Chain INPUT (policy ACCEPT)\n")); err == nil || !strings.Contains(err.Error(), "f:1:") {
		t.Errorf("err %v, want an error naming f:1", err)
	}
	if got, bad, err := XfrmState("f", strings.NewReader("")); err != nil || len(got) != 0 || got == nil || len(bad) != 0 {
		t.Errorf("empty: %v %v %v, want no SA (not nil)", got, bad, err)
	}
}

// vm28 is the recording of a Docker 28 encrypted overlay between two nodes
// (fixtures/swarm-vm28-xfrm, scripts/vm/record28-xfrm.sh).
func vm28(node, name string) string {
	return filepath.Join("..", "..", "fixtures", "swarm-vm28-xfrm", node, "xfrm", name)
}

// TestXfrmVM28: every way the recording printed the SAs and policies of
// each node reads without a line left over, and says the same: the keys
// (zeroed by the recording) shown or hidden, with or without -s.
func TestXfrmVM28(t *testing.T) {
	for _, node := range []string{"node0", "node1"} {
		read := func(name string) []topology.XfrmState {
			t.Helper()
			s, bad, err := XfrmState(name, strings.NewReader(readFixture(t, vm28(node, name))))
			if err != nil || len(bad) > 0 {
				t.Fatalf("%s %s: %v %+v", node, name, err, bad)
			}
			return s
		}
		keys, stats, nokeys, statsNokeys := read("ip-xfrm-state.txt"), read("s-ip-xfrm-state.txt"),
			read("nokeys-ip-xfrm-state.txt"), read("s-nokeys-ip-xfrm-state.txt")
		if len(keys) < 2 {
			t.Fatalf("%s: %d SAs, the recording has a peer", node, len(keys))
		}
		for _, s := range keys {
			if s.Proto != topology.XfrmESP || s.Reqid != 0xd0c4e3 || s.Mode != topology.XfrmTransport || len(s.Algos) != 1 ||
				s.Algos[0] != (topology.XfrmAlgo{Kind: topology.AlgoAEAD, Name: "rfc4106(gcm(aes))", KeyBits: 160, ICVBits: 64}) {
				t.Errorf("%s: not Docker's SA: %+v", node, s)
			}
		}
		// The redacted keyed output reads as the keyed one.
		red, bad, err := XfrmState("r", strings.NewReader(string(RedactXfrmKeys([]byte(readFixture(t, vm28(node, "s-ip-xfrm-state.txt")))))))
		if d := cmp.Diff(stats, red, cmpNetip); err != nil || len(bad) > 0 || d != "" {
			t.Errorf("%s: redacted -s (-keys +redacted) %v %+v:\n%s", node, err, bad, d)
		}
		// Without the key its length is gone, and without -s the counters.
		strip := func(ss []topology.XfrmState, bits, counters bool) []topology.XfrmState {
			out := make([]topology.XfrmState, len(ss))
			for i, s := range ss {
				s.Algos = append([]topology.XfrmAlgo{}, s.Algos...)
				if bits {
					s.Algos[0].KeyBits = 0
				}
				if counters {
					s.Stats = nil
				}
				out[i] = s
			}
			return out
		}
		// The states listed at different moments differ in order only when
		// an SA was added between them: the recording lists them settled.
		for name, pair := range map[string][2][]topology.XfrmState{
			"nokeys": {strip(keys, true, false), nokeys}, "-s": {keys, strip(stats, false, true)},
			"-s nokeys": {strip(keys, true, false), strip(statsNokeys, false, true)},
		} {
			if d := cmp.Diff(pair[0], pair[1], cmpNetip); d != "" {
				t.Errorf("%s: ip xfrm state vs %s (-plain +other):\n%s", node, name, d)
			}
		}
		pols, bad, err := XfrmPolicy("p", strings.NewReader(readFixture(t, vm28(node, "ip-xfrm-policy.txt"))))
		spols, sbad, serr := XfrmPolicy("p", strings.NewReader(readFixture(t, vm28(node, "s-ip-xfrm-policy.txt"))))
		if err != nil || serr != nil || len(bad)+len(sbad) > 0 || len(pols) != 1 || len(spols) != 1 {
			t.Fatalf("%s: policies %v %v %+v %+v", node, err, serr, bad, sbad)
		}
		if p := pols[0]; p.Dir != topology.XfrmOut || p.Mark == nil || p.Mark.Value != 0xd0c4e3 || p.Sel.DPort != 4789 || len(p.Tmpls) != 1 {
			t.Errorf("%s: not Docker's policy: %+v", node, p)
		}
	}
}
