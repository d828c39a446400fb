package inspect

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/topology"
)

// BundleIptablesTable is the file of one table's listing in a bundle
// namespace: iptables-nat.txt holds `iptables -t nat -S` or `iptables -t nat
// -L -n -v`, as pasted (see readBundleFirewall).
func BundleIptablesTable(table string) string { return "iptables-" + table + ".txt" }

// readBundleFirewall reads a bundle namespace's iptables rules:
//
//   - iptables-save.txt (`iptables-save [-c]`), every table, when it is
//     there;
//   - else the per-table files iptables-TABLE.txt, each `iptables -t TABLE
//     -S [-v]`, `iptables -t TABLE -L -n -v [-x] [--line-numbers]` or
//     `iptables-save -t TABLE` (the format is read from the content; see
//     parse.IptablesTable), joined in iptables-save's table order; the
//     tables without a file are "not collected" (Firewall.NotCollected), so
//     that evaluating them is unknown, never "no rules".
//
// When both are there, iptables-save.txt wins: it holds every table, and the
// listings are not read; a note says so. No file at all is a nil Firewall
// (not collected).
func readBundleFirewall(b *safefile.Dir, dir, name string) (*topology.Firewall, []string, error) {
	var fw *topology.Firewall
	found, err := parseFile(b, path.Join(dir, BundleIptables), func(file string, r io.Reader) (e error) {
		fw, e = parse.IptablesSave(file, r)
		return e
	})
	if err != nil {
		return nil, nil, err
	}
	var listed []string
	var parts []*topology.Firewall
	for _, t := range topology.IptablesTables {
		if found {
			if _, err := b.Stat(path.Join(dir, BundleIptablesTable(t.Name))); err == nil {
				listed = append(listed, BundleIptablesTable(t.Name))
			}
			continue
		}
		var part *topology.Firewall
		ok, err := parseFile(b, path.Join(dir, BundleIptablesTable(t.Name)), func(file string, r io.Reader) (e error) {
			part, e = parse.IptablesTable(file, t.Name, r)
			return e
		})
		if err != nil {
			return nil, nil, err
		}
		if ok {
			parts = append(parts, part)
		}
	}
	if found {
		var notes []string
		if len(listed) > 0 {
			notes = append(notes, fmt.Sprintf("netns %s: %s not read: %s holds every table", name, strings.Join(listed, ", "), BundleIptables))
		}
		if cut := cutSave(fw, name); cut != "" {
			for _, t := range topology.IptablesTables {
				if fw.Table(t.Name) == nil {
					fw.NotCollected = append(fw.NotCollected, t.Name)
				}
			}
			notes = append(notes, fmt.Sprintf("netns %s: %s %s: it was cut (iptables-save -t TABLE?), so the tables it lacks (%s) were not collected, not empty", name, BundleIptables, cut, strings.Join(fw.NotCollected, ", ")))
		}
		return fw, notes, nil
	}
	if len(parts) == 0 {
		return nil, nil, nil
	}
	fw = &topology.Firewall{Tables: []*topology.Table{}}
	have := map[string]bool{}
	for _, p := range parts {
		fw.Tables = append(fw.Tables, p.Tables...)
		fw.Unparsed = append(fw.Unparsed, p.Unparsed...)
		have[p.Tables[0].Name] = true
		if fw.Backend == "" {
			fw.Backend = p.Backend
		}
	}
	for _, t := range topology.IptablesTables {
		if !have[t.Name] {
			fw.NotCollected = append(fw.NotCollected, t.Name)
		}
	}
	return fw, nil, nil
}

// dockerPairs are the tables Docker always writes together in a namespace,
// by the namespace's file name ("host" for the root): in the host filter
// (DOCKER-USER, DOCKER-INGRESS, ...) and nat (DOCKER, DOCKER-INGRESS), in
// the ingress sandbox mangle (the MARKs) and nat (the IPVS SNAT).
var dockerPairs = map[string][2]string{BundleHost: {"filter", "nat"}, "ingress_sbox": {"mangle", "nat"}}

// cutSave says how an iptables-save of namespace name shows itself cut
// ("" when it does not): it holds one of the tables Docker always writes
// there together, with Docker's rules in it, and not the other. A whole
// iptables-save prints every table the kernel has; one missing beside its
// pair is a dump of some tables only.
func cutSave(fw *topology.Firewall, name string) string {
	pair, ok := dockerPairs[name]
	if !ok || fw == nil {
		return ""
	}
	for i, t := range pair {
		other := pair[1-i]
		if tb := fw.Table(t); tb != nil && fw.Table(other) == nil && dockerRules(tb) {
			return fmt.Sprintf("has Docker's %s table and no %s table, which Docker always writes beside it", t, other)
		}
	}
	return ""
}

// dockerRules reports whether a table holds rules Docker writes: a chain
// named DOCKER…, or rules that mark or SNAT for IPVS.
func dockerRules(t *topology.Table) bool {
	for _, c := range t.Chains {
		if strings.HasPrefix(c.Name, "DOCKER") {
			return true
		}
		for _, r := range c.All() {
			if r.Target == "MARK" || strings.Contains(r.Text, "--ipvs") {
				return true
			}
		}
	}
	return false
}
