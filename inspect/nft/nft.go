// Package nft reads a network namespace's IPv4 iptables ruleset straight
// from the kernel's nf_tables over netlink (github.com/google/nftables),
// without exec'ing iptables-save, and decodes what iptables-nft (1.8.x)
// wrote there — native payload/meta/cmp expressions and xtables-compat
// match/target expressions — into the same topology.Firewall that parsing
// `iptables-save -c` gives.
//
// The netlink reading lives in *_linux.go; the decoding is pure (a Dump in,
// a Firewall out) and tested without root.
package nft

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// ErrLegacy is returned (wrapped in *LegacyError) when a namespace has no
// iptables-nft tables but legacy x_tables ones: the caller must fall back to
// exec'ing iptables-save there. Test with errors.Is(err, ErrLegacy).
var ErrLegacy = errors.New("iptables rules are in the legacy x_tables backend")

// LegacyError names the namespace and the legacy tables found.
type LegacyError struct {
	NetNS  string
	Tables []string
}

func (e *LegacyError) Error() string {
	ns := e.NetNS
	if ns == "" {
		ns = "current netns"
	}
	return fmt.Sprintf("nft: %s: %v (tables %s)", ns, ErrLegacy, strings.Join(e.Tables, ","))
}

func (e *LegacyError) Unwrap() error { return ErrLegacy }

// Dump is the raw nf_tables state of one namespace, family ip, as read from
// the kernel: what Decode turns into a Firewall.
type Dump struct {
	Tables []string
	Chains []RawChain
	Rules  []RawRule
	// Legacy lists the legacy x_tables tables also present (from
	// /proc/net/ip_tables_names), reported as unparsed.
	Legacy []string
	// Sets names the ipsets the rules' set matches refer to by index (nil:
	// not looked up).
	Sets *SetNames
}

// RawChain is one nf_tables chain.
type RawChain struct {
	Table string
	Name  string
	// Base chains have a hook and a policy.
	Base   bool
	Hook   uint32
	Policy uint32 // NF_DROP (0) or NF_ACCEPT (1)
	// Packets and Bytes are the chain's counters (NFTA_CHAIN_COUNTERS),
	// which iptables-save -c prints for the policy.
	Packets, Bytes uint64
}

// RawRule is one rule with its expressions in order. Exprs holds
// github.com/google/nftables/expr values (*expr.Meta, *expr.Cmp, ...) for
// native expressions, *XTMatch / *XTTarget for xtables-compat ones (their
// Info kept as raw bytes), and *UnknownExpr for anything else.
type RawRule struct {
	Table    string
	Chain    string
	Handle   uint64
	Exprs    []any
	UserData []byte
}

// XTMatch is an xtables-compat match expression with its raw Info struct.
type XTMatch struct {
	Name string
	Rev  uint32
	Info []byte
}

// XTTarget is an xtables-compat target expression with its raw Info struct.
type XTTarget struct {
	Name string
	Rev  uint32
	Info []byte
}

// UnknownExpr is an expression this package does not decode.
type UnknownExpr struct {
	Name string
	Err  error // set when the expression failed to unmarshal
}

// tableOrder is the order iptables-nft-save prints tables in (its
// nft_table_type enum), and each table's built-in chains in save order.
var tableOrder = []struct {
	name   string
	chains []string
}{
	{"mangle", []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}},
	{"security", []string{"INPUT", "FORWARD", "OUTPUT"}},
	{"raw", []string{"PREROUTING", "OUTPUT"}},
	{"filter", []string{"INPUT", "FORWARD", "OUTPUT"}},
	{"nat", []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}},
}

// IsIptablesTable reports whether name is one of the tables iptables-nft
// manages in family ip.
func IsIptablesTable(name string) bool {
	for _, t := range tableOrder {
		if t.name == name {
			return true
		}
	}
	return false
}

// Decode builds the Firewall iptables-save -c would print from a Dump:
// tables in save order, built-in chains first (those missing in the kernel
// shown as ACCEPT [0:0], as iptables-save does), then user chains sorted by
// name, rules in kernel order. Whatever cannot be decoded is kept and
// reported in Unparsed.
func Decode(d *Dump) *topology.Firewall {
	fw := &topology.Firewall{Backend: "nf_tables"}
	present := map[string]bool{}
	for _, t := range d.Tables {
		present[t] = true
	}
	chains := map[string][]RawChain{}
	for _, c := range d.Chains {
		present[c.Table] = true
		chains[c.Table] = append(chains[c.Table], c)
	}
	rules := map[[2]string][]RawRule{}
	for _, r := range d.Rules {
		k := [2]string{r.Table, r.Chain}
		rules[k] = append(rules[k], r)
	}
	for _, t := range d.Tables {
		if !IsIptablesTable(t) {
			fw.Unparsed = append(fw.Unparsed, topology.Unparsed{
				File:   "nf_tables",
				Text:   "table ip " + t,
				Reason: fmt.Sprintf("table ip %s is not an iptables table (native nftables); not decoded", t),
			})
		}
	}
	for _, spec := range tableOrder {
		if !present[spec.name] {
			continue
		}
		tbl := &topology.Table{Name: spec.name}
		byName := map[string]RawChain{}
		for _, c := range chains[spec.name] {
			byName[c.Name] = c
		}
		builtin := map[string]bool{}
		for _, name := range spec.chains {
			builtin[name] = true
			c, ok := byName[name]
			ch := &topology.Chain{Name: name, Policy: "ACCEPT"}
			if ok {
				ch.Policy, ch.Packets, ch.Bytes = policyName(c), c.Packets, c.Bytes
			}
			tbl.Chains = append(tbl.Chains, ch)
		}
		var user []RawChain
		for _, c := range chains[spec.name] {
			if builtin[c.Name] {
				continue
			}
			if c.Base {
				fw.Unparsed = append(fw.Unparsed, topology.Unparsed{
					File:   "nf_tables",
					Text:   fmt.Sprintf(":%s %s", c.Name, policyName(c)),
					Reason: fmt.Sprintf("table %s: base chain %s (hook %d) is not an iptables built-in chain", spec.name, c.Name, c.Hook),
				})
			}
			user = append(user, c)
		}
		sort.Slice(user, func(i, j int) bool { return user[i].Name < user[j].Name })
		for _, c := range user {
			ch := &topology.Chain{Name: c.Name, Policy: "-"}
			if c.Base {
				ch.Policy, ch.Packets, ch.Bytes = policyName(c), c.Packets, c.Bytes
			}
			tbl.Chains = append(tbl.Chains, ch)
		}
		for _, ch := range tbl.Chains {
			k := [2]string{spec.name, ch.Name}
			rr := rules[k]
			delete(rules, k)
			for i, rr := range rr {
				r, probs := decodeRule(ch.Name, rr.Exprs, rr.UserData, d.Sets)
				ch.Rules = append(ch.Rules, r)
				if len(probs) > 0 {
					fw.Unparsed = append(fw.Unparsed, topology.Unparsed{
						File: "nf_tables",
						Line: i + 1,
						Text: r.Text,
						Reason: fmt.Sprintf("table %s chain %s rule %d (handle %d): %s",
							spec.name, ch.Name, i+1, rr.Handle, strings.Join(probs, "; ")),
					})
				}
			}
		}
		fw.Tables = append(fw.Tables, tbl)
	}
	// Rules of an iptables table whose chain the chain dump did not list
	// (the dumps raced a change) must not vanish.
	var orphans [][2]string
	for k := range rules {
		if IsIptablesTable(k[0]) {
			orphans = append(orphans, k)
		}
	}
	sort.Slice(orphans, func(i, j int) bool {
		return orphans[i][0] < orphans[j][0] || orphans[i][0] == orphans[j][0] && orphans[i][1] < orphans[j][1]
	})
	for _, k := range orphans {
		for i, r := range rules[k] {
			dr, _ := decodeRule(k[1], r.Exprs, r.UserData, d.Sets)
			fw.Unparsed = append(fw.Unparsed, topology.Unparsed{File: "nf_tables", Line: i + 1, Text: dr.Text,
				Reason: fmt.Sprintf("table %s: rule %d (handle %d) of chain %s, which the chain dump did not list", k[0], i+1, r.Handle, k[1])})
		}
	}
	if len(d.Legacy) > 0 {
		fw.Unparsed = append(fw.Unparsed, topology.Unparsed{
			File:   "x_tables",
			Text:   "legacy tables: " + strings.Join(d.Legacy, ","),
			Reason: "iptables-legacy tables are also present and are not part of this model (use iptables-legacy-save)",
		})
	}
	return fw
}

func policyName(c RawChain) string {
	if !c.Base {
		return "-"
	}
	if c.Policy == 0 {
		return "DROP"
	}
	return "ACCEPT"
}
