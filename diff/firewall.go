package diff

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// firewall compares the namespace's iptables rules (the backend meshtrace
// evaluates) and the other backend's (the legacy one beside nf_tables).
func (d *netnsDiff) firewall(a, b *topology.Namespace) {
	if d.collected(AreaRules, a.Firewall != nil, b.Firewall != nil) {
		if ba, bb := a.Firewall.Backend, b.Firewall.Backend; ba != "" && bb != "" && ba != bb {
			d.add(Change{Kind: BackendChanged, Op: Changed, Field: "backend", Before: string(ba), After: string(bb),
				Summary: fmt.Sprintf("iptables backend %s -> %s", ba, bb)})
		}
		d.rules(a.Firewall, b.Firewall, "")
	}
	if d.collected(AreaLegacy, legacyCollected(d.a, a), legacyCollected(d.b, b)) {
		d.rules(a.OtherFirewall, b.OtherFirewall, "legacy ")
	}
}

// legacyCollected reports whether the legacy backend's rules beside
// nf_tables were read in ns: they were when the model has them; a nil
// OtherFirewall means "none" where the firewall was read and the readers
// did not say otherwise (the live reader reads them whenever nf_tables
// says they are there, and leaves the marker in Unparsed when it cannot;
// collect writes iptables-legacy-save.txt only where it printed
// something, and says in NOTES.txt where it could not run it).
func legacyCollected(m *topology.Model, ns *topology.Namespace) bool {
	switch {
	case ns.OtherFirewall != nil:
		return true
	case ns.Firewall == nil:
		return false
	case ns.Firewall.Backend == topology.BackendLegacy:
		return true // the legacy rules are the firewall; only legacy can be the other
	}
	for _, u := range ns.Firewall.Unparsed {
		if strings.Contains(u.Text, "legacy tables") {
			return false
		}
	}
	for _, n := range m.Notes {
		if strings.HasPrefix(n, "iptables-legacy-save.txt not collected") || strings.HasPrefix(n, "netns "+ns.Name+": the legacy iptables backend") {
			return false
		}
	}
	return true
}

// rules compares two rulesets table by table, chain by chain; label
// prefixes the summaries ("legacy ").
func (d *netnsDiff) rules(a, b *topology.Firewall, label string) {
	var backend string
	if b != nil {
		backend = string(b.Backend)
	}
	for _, t := range tableNames(a, b) {
		if inA, inB := tableCollected(a, t), tableCollected(b, t); !inA || !inB {
			d.skip(areaTablePref+t, notCollectedIn(inA, inB))
			continue
		}
		ta, tb := a.Table(t), b.Table(t)
		for _, name := range chainNames(ta, tb) {
			d.chain(label, backend, t, ta.Chain(name), tb.Chain(name), name)
		}
	}
}

// tableCollected: a nil firewall here is one with no tables (the legacy
// backend's, see legacyCollected).
func tableCollected(fw *topology.Firewall, table string) bool {
	return fw == nil || fw.Collected(table)
}

// tableNames are the tables of a and b: iptables' own in save order, then
// any other.
func tableNames(fws ...*topology.Firewall) []string {
	var out []string
	for _, t := range topology.IptablesTables {
		out = append(out, t.Name)
	}
	for _, fw := range fws {
		if fw != nil {
			for _, t := range fw.Tables {
				out = append(out, t.Name)
			}
		}
	}
	return unique(out)
}

// chainNames are the chains of b in order, then those only in a.
func chainNames(a, b *topology.Table) []string {
	var out []string
	for _, t := range []*topology.Table{b, a} {
		if t != nil {
			for _, c := range t.Chains {
				out = append(out, c.Name)
			}
		}
	}
	return unique(out)
}

// chain compares one chain. A built-in chain that is absent (its table
// not created) is one with policy ACCEPT and no rules; a user chain only
// on one side is added or removed, with its rules.
func (d *netnsDiff) chain(label, backend, table string, a, b *topology.Chain, name string) {
	obj := table + " " + name
	base := Change{Object: obj, Backend: backend, Table: table, Chain: name}
	user := (a != nil && a.Policy == "-") || (b != nil && b.Policy == "-")
	switch {
	case user && a == nil:
		c := base
		c.Kind, c.Op, c.Summary = ChainAdded, Added, fmt.Sprintf("%schain %s added (%d rules)", label, obj, b.Len())
		d.add(c)
	case user && b == nil:
		c := base
		c.Kind, c.Op, c.Summary = ChainRemoved, Removed, fmt.Sprintf("%schain %s removed (%d rules)", label, obj, a.Len())
		d.add(c)
	case !user:
		pa, pb := policy(a), policy(b)
		if pa != pb {
			c := base
			c.Kind, c.Op, c.Field, c.Before, c.After = PolicyChanged, Changed, "policy", pa, pb
			c.Summary = fmt.Sprintf("%s%s policy %s -> %s", label, obj, pa, pb)
			d.add(c)
		}
	}
	d.ruleList(label, base, texts(a), texts(b))
}

func policy(c *topology.Chain) string {
	if c == nil {
		return "ACCEPT"
	}
	return c.Policy
}

func texts(c *topology.Chain) []string {
	if c == nil {
		return nil
	}
	out := make([]string, c.Len())
	for i, r := range c.All() {
		out[i] = r.Text
	}
	return out
}

// ruleList compares two rule lists of a chain by text: the n-th rule of a
// text in a is the n-th of that text in b (as DiffCounters matches them).
// Rules only in a are removed, only in b added; of the rules in both,
// those outside the longest run kept in the same order moved.
func (d *netnsDiff) ruleList(label string, base Change, a, b []string) {
	prev := map[string][]int{}
	for i, t := range a {
		prev[t] = append(prev[t], i)
	}
	seen := map[string]int{}
	matchA := make([]int, len(b)) // b's index -> a's, -1 added
	inB := make([]bool, len(a))
	for j, t := range b {
		n := seen[t]
		seen[t]++
		matchA[j] = -1
		if n < len(prev[t]) {
			matchA[j] = prev[t][n]
			inB[prev[t][n]] = true
		}
	}
	for i, t := range a {
		if !inB[i] {
			c := base
			c.Kind, c.Op, c.Rule, c.Position = RuleRemoved, Removed, t, i+1
			c.Summary = fmt.Sprintf("%s%s #%d removed: %s", label, base.Object, i+1, t)
			d.add(c)
		}
	}
	kept := keptInOrder(matchA)
	for j, t := range b {
		c := base
		c.Rule, c.Position = t, j+1
		switch i := matchA[j]; {
		case i < 0:
			c.Kind, c.Op = RuleAdded, Added
			c.Summary = fmt.Sprintf("%s%s #%d added: %s", label, base.Object, j+1, t)
		case !kept[j]:
			c.Kind, c.Op, c.From = RuleMoved, Moved, i+1
			c.Summary = fmt.Sprintf("%s%s rule moved from #%d to #%d: %s", label, base.Object, i+1, j+1, t)
		default:
			continue
		}
		d.add(c)
	}
}

// keptInOrder marks the entries of idx (b's rules' indexes in a, -1 for
// none) that form a longest increasing run: the rules that kept their
// order; the other matched ones moved.
func keptInOrder(idx []int) []bool {
	// Patience sorting: tails[k] is the index into idx of the smallest
	// tail of an increasing run of length k+1, prev links runs back.
	var tails []int
	prev := make([]int, len(idx))
	for j, v := range idx {
		if v < 0 {
			continue
		}
		k, _ := slices.BinarySearchFunc(tails, v, func(t, v int) int { return idx[t] - v })
		if k > 0 {
			prev[j] = tails[k-1]
		} else {
			prev[j] = -1
		}
		if k == len(tails) {
			tails = append(tails, j)
		} else {
			tails[k] = j
		}
	}
	kept := make([]bool, len(idx))
	if len(tails) > 0 {
		for j := tails[len(tails)-1]; j >= 0; j = prev[j] {
			kept[j] = true
		}
	}
	return kept
}
