package nft

import (
	"fmt"

	"github.com/meshtrace/meshtrace/topology"
)

// source is the kernel access Read needs, injected so the logic around it
// is tested with a fake.
type source interface {
	// dump reads tables, chains and rules of family ip in one generation.
	dump(nsPath string) (*Dump, error)
	// legacyTables lists /proc/net/ip_tables_names inside the netns.
	legacyTables(nsPath string) ([]string, error)
	// setNames looks up the names of the ipsets with these indexes
	// inside the netns (an index without a set is left out).
	setNames(nsPath string, ids []uint16) (map[uint16]string, error)
}

func read(src source, nsPath string) (*topology.Firewall, error) {
	d, err := src.dump(nsPath)
	if err != nil {
		return nil, err
	}
	// Set matches hold an ipset index; iptables-save prints the set's
	// name, which only the namespace's ipset knows. A failed lookup is
	// not a failed read: those matches stay undecoded, saying why.
	if ids := setIndexes(d); len(ids) > 0 {
		names, err := src.setNames(nsPath, ids)
		d.Sets = &SetNames{Names: names}
		if err != nil {
			d.Sets.Err = err.Error()
		}
	}
	// Legacy x_tables tables are looked for in every namespace (one
	// setns through netnsx, ~15% of a read): with none in nf_tables the
	// caller must exec iptables-save; next to nf_tables ones (Docker
	// writing with iptables-legacy on an nft host) they are invisible to
	// this reader and to iptables-nft-save, so they are reported.
	legacy, lerr := src.legacyTables(nsPath)
	if !hasIptablesTable(d) {
		if lerr != nil {
			return nil, lerr
		}
		if len(legacy) > 0 {
			return nil, &LegacyError{NetNS: nsPath, Tables: legacy}
		}
		return Decode(d), nil
	}
	d.Legacy = legacy
	fw := Decode(d)
	if lerr != nil {
		fw.Unparsed = append(fw.Unparsed, topology.Unparsed{File: "x_tables", Text: "legacy tables: unknown",
			Reason: fmt.Sprintf("could not check for iptables-legacy tables: %v", lerr)})
	}
	return fw, nil
}

func hasIptablesTable(d *Dump) bool {
	for _, t := range d.Tables {
		if IsIptablesTable(t) {
			return true
		}
	}
	return false
}
