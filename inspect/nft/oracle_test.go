//go:build linux

package nft

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

// The test oracle: iptables-save -c output, compared with a decoded
// Firewall line by line (compareWithSave) and field by field through the
// project's parser (compareParsed).

// saved is iptables-save -c output reduced to what the model holds.
type saved struct {
	tables []savedTable
}

type savedTable struct {
	name   string
	chains []savedChain // in save order; rules grouped per chain
}

type savedChain struct {
	name, policy   string
	packets, bytes uint64
	rules          []savedRule
}

type savedRule struct {
	text           string
	packets, bytes uint64
}

// parseSave is a deliberately small reader of `iptables-save -c` used as
// the test oracle (the project's real parser lives in inspect/parse).
func parseSave(t testing.TB, text string) saved {
	t.Helper()
	var s saved
	var cur *savedTable
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	counters := func(c string, line int) (uint64, uint64) {
		c = strings.TrimSuffix(strings.TrimPrefix(c, "["), "]")
		p, b, ok := strings.Cut(c, ":")
		pn, err1 := strconv.ParseUint(p, 10, 64)
		bn, err2 := strconv.ParseUint(b, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("iptables-save line %d: bad counters %q", line, c)
		}
		return pn, bn
	}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			s.tables = append(s.tables, savedTable{name: line[1:]})
			cur = &s.tables[len(s.tables)-1]
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) != 3 {
				t.Fatalf("iptables-save line %d: %q", n, line)
			}
			p, b := counters(f[2], n)
			cur.chains = append(cur.chains, savedChain{name: f[0], policy: f[1], packets: p, bytes: b})
		case strings.HasPrefix(line, "["):
			c, rule, _ := strings.Cut(line, " ")
			p, b := counters(c, n)
			chain := strings.Fields(rule)[1]
			found := false
			for i := range cur.chains {
				if cur.chains[i].name == chain {
					cur.chains[i].rules = append(cur.chains[i].rules, savedRule{text: rule, packets: p, bytes: b})
					found = true
				}
			}
			if !found {
				t.Fatalf("iptables-save line %d: rule for unknown chain %s", n, chain)
			}
		default:
			t.Fatalf("iptables-save line %d: unexpected %q (not run with -c?)", n, line)
		}
	}
	return s
}

// compareWithSave checks that fw equals iptables-save -c's view, table by
// table, chain by chain, rule by rule (text and counters). It returns the
// number of rules compared.
func compareWithSave(t testing.TB, fw *topology.Firewall, s saved) int {
	t.Helper()
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	rules := 0
	if len(fw.Tables) != len(s.tables) {
		fail("tables: nft has %v, iptables-save has %v", tableNames(fw), savedTableNames(s))
	}
	for i := 0; i < len(fw.Tables) && i < len(s.tables); i++ {
		ft, st := fw.Tables[i], s.tables[i]
		if ft.Name != st.name {
			fail("table %d: nft %s, iptables-save %s", i, ft.Name, st.name)
			continue
		}
		if len(ft.Chains) != len(st.chains) {
			fail("table %s: nft chains %v, iptables-save chains %v", ft.Name, chainNames(ft), savedChainNames(st))
			continue
		}
		for j, fc := range ft.Chains {
			sc := st.chains[j]
			if fc.Name != sc.name || fc.Policy != sc.policy || fc.Packets != sc.packets || fc.Bytes != sc.bytes {
				fail("table %s chain %d: nft :%s %s [%d:%d], iptables-save :%s %s [%d:%d]", ft.Name, j,
					fc.Name, fc.Policy, fc.Packets, fc.Bytes, sc.name, sc.policy, sc.packets, sc.bytes)
				continue
			}
			if len(fc.Rules) != len(sc.rules) {
				fail("%s/%s: nft %d rules, iptables-save %d", ft.Name, fc.Name, len(fc.Rules), len(sc.rules))
			}
			for k := 0; k < len(fc.Rules) && k < len(sc.rules); k++ {
				fr, sr := fc.Rules[k], sc.rules[k]
				rules++
				if fr.Text != sr.text {
					fail("%s/%s rule %d text:\n  nft:           %s\n  iptables-save: %s", ft.Name, fc.Name, k+1, fr.Text, sr.text)
				}
				if fr.Text != fr.Render() {
					fail("%s/%s rule %d: Text is not Render()", ft.Name, fc.Name, k+1)
				}
				if !fr.HasCounters || fr.Packets != sr.packets || fr.Bytes != sr.bytes {
					fail("%s/%s rule %d counters: nft [%d:%d] (has %v), iptables-save [%d:%d]", ft.Name, fc.Name, k+1,
						fr.Packets, fr.Bytes, fr.HasCounters, sr.packets, sr.bytes)
				}
			}
		}
	}
	if len(errs) > 0 {
		t.Errorf("nft model differs from iptables-save -c:\n%s", strings.Join(errs, "\n"))
	}
	return rules
}

func tableNames(fw *topology.Firewall) (n []string) {
	for _, t := range fw.Tables {
		n = append(n, t.Name)
	}
	return n
}

func savedTableNames(s saved) (n []string) {
	for _, t := range s.tables {
		n = append(n, t.name)
	}
	return n
}

func chainNames(t *topology.Table) (n []string) {
	for _, c := range t.Chains {
		n = append(n, c.Name)
	}
	return n
}

func savedChainNames(t savedTable) (n []string) {
	for _, c := range t.chains {
		n = append(n, c.name)
	}
	return n
}

// compareParsed checks the structured fields against the project's
// iptables-save parser (inspect/parse): the same Firewall, except the
// fields only one side can know (line numbers, the verbatim text, which
// compareWithSave checks, and the backend comment).
func compareParsed(t testing.TB, fw *topology.Firewall, saveText string) {
	t.Helper()
	want, err := parse.IptablesSave("iptables-save", strings.NewReader(saveText))
	if err != nil {
		t.Fatalf("parse iptables-save: %v", err)
	}
	if len(want.Unparsed) > 0 {
		t.Fatalf("inspect/parse left lines unparsed: %+v", want.Unparsed)
	}
	if err := fw.Compile(); err != nil { // as read does; Decode alone does not
		t.Fatalf("compile: %v", err)
	}
	if diff := cmp.Diff(want.Tables, fw.Tables, cmpopts.EquateEmpty(),
		cmpopts.IgnoreFields(topology.Rule{}, "Line", "Text")); diff != "" {
		t.Errorf("structured rules differ from inspect/parse (-parse +nft):\n%s", diff)
	}
}
