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
