package parse

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshtrace/meshtrace/topology"
)

func iptablesSaveAfter(t testing.TB, file, data string, after int) (*topology.Firewall, error) {
	t.Helper()
	return parseIptablesAfter(file, newLines(file, strings.NewReader(data)), "", after)
}

// samePacked: fw, read packing the rules past the first few, holds the
// same rules as decoded, read decoding them all: each rule decoded again
// is the decoded one (text, line, counters, parts, typed arguments), and
// with withJSON the JSON is the same.
func samePacked(t *testing.T, decoded, packed *topology.Firewall, withJSON bool) {
	t.Helper()
	if len(packed.Tables) != len(decoded.Tables) || packed.RuleCount() != decoded.RuleCount() {
		t.Fatalf("packed: %d tables, %d rules; decoded: %d, %d", len(packed.Tables), packed.RuleCount(), len(decoded.Tables), decoded.RuleCount())
	}
	for ti, dt := range decoded.Tables {
		pt := packed.Tables[ti]
		if len(pt.Chains) != len(dt.Chains) {
			t.Fatalf("table %s: %d chains packed, %d decoded", dt.Name, len(pt.Chains), len(dt.Chains))
		}
		for ci, dc := range dt.Chains {
			pc := pt.Chains[ci]
			if pc.Len() != dc.Len() || dc.Packed.Len() != 0 {
				t.Fatalf("%s/%s: %d rules packed (%d of them packed), %d decoded", dt.Name, dc.Name, pc.Len(), pc.Packed.Len(), dc.Len())
			}
			for i, dr := range dc.All() {
				// DeepEqual is quick; cmp tells what differs
				if pr := pc.Rule(i); !reflect.DeepEqual(dr, pr) {
					d := cmp.Diff(dr, pr)
					t.Fatalf("%s/%s rule %d (line %d): packed differs (-decoded +packed):\n%s", dt.Name, dc.Name, i, dr.Line, d)
				}
			}
		}
	}
	if !withJSON {
		return
	}
	dj, err1 := json.Marshal(decoded)
	pj, err2 := json.Marshal(packed)
	if err1 != nil || err2 != nil || string(dj) != string(pj) {
		t.Fatalf("JSON differs (%v, %v):\n%.2000s\n%.2000s", err1, err2, dj, pj)
	}
}

// TestPackedRulesAsDecoded: every recorded iptables-save, with its rules
// packed from the first on and from the fourth on, holds rules equal to
// the ones read decoded.
func TestPackedRulesAsDecoded(t *testing.T) {
	n := 0
	for _, path := range fixtures(t, "iptables") {
		data := readFixture(t, path)
		decoded, err := IptablesSave(path, strings.NewReader(data))
		if err != nil {
			continue // the fixtures of bad input
		}
		for _, after := range []int{0, 3} {
			packed, err := iptablesSaveAfter(t, path, data, after)
			if err != nil {
				t.Fatalf("%s packed after %d: %v", path, after, err)
			}
			held := 0
			for _, tb := range packed.Tables {
				for _, c := range tb.Chains {
					held += c.Packed.Len()
				}
			}
			if want := max(decoded.RuleCount()-after, 0); held != want {
				t.Fatalf("%s: %d rules packed after %d, want %d", path, held, after, want)
			}
			n += held
			samePacked(t, decoded, packed, true)
		}
	}
	if n < 100 {
		t.Fatalf("only %d rules packed over the fixtures", n)
	}
}

// TestPackedRulesBadInput: a rule that does not parse or compile is found
// and named by file and line whether it would be packed or not.
func TestPackedRulesBadInput(t *testing.T) {
	data := "*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n" +
		"-A INPUT -s 10.0.0.1/32 -j X\n" +
		"-A INPUT -m comment --comment \"open -j ACCEPT\n" + // line 5: not understood
		"-A X -p tcp -m tcp --dport 8080 -j ACCEPT\n" +
		"-A X -p tcp -m tcp --dport 99999 -j ACCEPT\n" + // line 7: refused
		"COMMIT\n"
	_, want := IptablesSave("bad.txt", strings.NewReader(data))
	if want == nil || !strings.Contains(want.Error(), "bad.txt:7") || !strings.Contains(want.Error(), "bad.txt:5") {
		t.Fatalf("decoded: error %v, want one naming bad.txt:5 and bad.txt:7", want)
	}
	for _, after := range []int{0, 1} {
		_, err := iptablesSaveAfter(t, "bad.txt", data, after)
		if err == nil || err.Error() != want.Error() {
			t.Errorf("packed after %d: error %v, want %v", after, err, want)
		}
	}
	// A rule for an undeclared chain is the read's error at once.
	_, err := iptablesSaveAfter(t, "bad.txt", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n-A Y -j ACCEPT\nCOMMIT\n", 0)
	if err == nil || !strings.Contains(err.Error(), "bad.txt:4") {
		t.Fatalf("undeclared chain, packed: %v", err)
	}
}

// blockList is an iptables-save -c of n block-list rules in 8 chains, the
// shapes bench/bundles writes (comments, ports, conntrack, LOG, REJECT).
func blockList(n int) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n")
	for c := range 8 {
		fmt.Fprintf(&b, ":BLOCK-%d - [0:0]\n", c)
	}
	for i := range n {
		a := 0x0b000000 + uint32(i)*7
		ip := fmt.Sprintf("%d.%d.%d.%d", a>>24, byte(a>>16), byte(a>>8), byte(a))
		fmt.Fprintf(&b, "[%d:%d] -A BLOCK-%d ", i%97, i%97*60, i%8)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "-s %s/32 -m comment --comment \"feed id %d\" -j DROP\n", ip, i)
		case 1:
			fmt.Fprintf(&b, "-s %s/32 -p tcp -m multiport --dports 22,80,443 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n", ip)
		case 2:
			fmt.Fprintf(&b, "-s %s/32 -m limit --limit 5/min -j LOG --log-prefix \"blocked-%d \"\n", ip, i%1000)
		default:
			fmt.Fprintf(&b, "! -s %s/32 -p tcp -m tcp --dport %d -j RETURN\n", ip, 1+i%65535)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// TestBlockListHoldsLittle: a block-list past the reader's first
// packAfter rules holds little more than its text (each rule's text stays
// in the blocks it was read in): under 64 bytes a rule besides the input,
// where decoding each rule held over 300; and it reads back as decoded.
func TestBlockListHoldsLittle(t *testing.T) {
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	// what reading n rules holds besides the input
	held := func(n int) (int64, *topology.Firewall, string) {
		data := blockList(n)
		before := heap()
		fw, err := IptablesSave("block.txt", strings.NewReader(data))
		h := heap() - before - int64(len(data))
		if err != nil || fw.RuleCount() != n || len(fw.Unparsed) != 0 {
			t.Fatalf("%d rules, %d unparsed, %v", fw.RuleCount(), len(fw.Unparsed), err)
		}
		return h, fw, data
	}
	const n1, n2 = packAfter + 10000, packAfter + 160000
	h1, _, _ := held(n1)
	h2, fw, data := held(n2)
	per := float64(h2-h1) / (n2 - n1)
	t.Logf("each rule past the first %d holds %.0f bytes besides its text", n1, per)
	if per > 64 {
		t.Errorf("each rule past the first %d holds %.0f bytes besides its %d bytes of text", n1, per, len(data)/n2)
	}
	decoded, err := iptablesSaveAfter(t, "block.txt", data, n2)
	if err != nil {
		t.Fatal(err)
	}
	samePacked(t, decoded, fw, false)
	runtime.KeepAlive(fw)
}
