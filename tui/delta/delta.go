// Package delta compares two readings of a node's model: which rules and
// load-balancer backends appeared, changed or went, and how far counters
// moved. The TUI highlights what a background refresh changed with it.
package delta

import (
	"fmt"
	"sort"

	"github.com/meshtrace/meshtrace/topology"
)

// Change is what happened to one rule or backend.
type Change struct {
	// Added: not in the previous reading. Modified: present but
	// different (weight, forwarding). Otherwise only counters moved.
	Added    bool
	Modified bool
	// Delta is how far the packet counter (rules) or the connection
	// counter (backends) moved.
	Delta uint64
}

// Highlight reports whether the change is more than counters moving.
func (c Change) Highlight() bool { return c.Added || c.Modified }

type ruleKey struct{ netns, table, chain, text string }
type destKey struct{ netns, svc, dest string }

// Set is the difference between two readings. The zero Set has no
// changes.
type Set struct {
	rules   map[ruleKey]Change
	dests   map[destKey]Change
	netns   map[string]bool
	Removed []string // rules, backends and namespaces that went away
}

// Compare returns what changed from old to cur. A nil old (the first
// reading) changes nothing.
func Compare(old, cur *topology.Model) Set {
	s := Set{rules: map[ruleKey]Change{}, dests: map[destKey]Change{}, netns: map[string]bool{}}
	if old == nil || cur == nil {
		return s
	}
	prev := map[string]*topology.Namespace{}
	for _, ns := range old.Namespaces {
		prev[ns.Name] = ns
	}
	for _, ns := range cur.Namespaces {
		p, ok := prev[ns.Name]
		delete(prev, ns.Name)
		if !ok {
			s.netns[ns.Name] = true
			continue
		}
		s.compareRules(p, ns)
		s.compareLB(p, ns)
	}
	for name := range prev {
		s.Removed = append(s.Removed, "netns "+name)
	}
	sort.Strings(s.Removed)
	return s
}

func (s *Set) compareRules(p, ns *topology.Namespace) {
	before := map[ruleKey]*topology.Rule{}
	eachRule(p, func(k ruleKey, r *topology.Rule) { before[k] = r })
	eachRule(ns, func(k ruleKey, r *topology.Rule) {
		o, ok := before[k]
		delete(before, k)
		switch {
		case !ok:
			s.rules[k] = Change{Added: true, Delta: r.Packets}
			s.netns[ns.Name] = true
		case r.Packets != o.Packets:
			s.rules[k] = Change{Delta: r.Packets - min(r.Packets, o.Packets)}
		}
	})
	for k := range before {
		s.Removed = append(s.Removed, fmt.Sprintf("rule %s %s: %s", k.netns, k.table, k.text))
		s.netns[ns.Name] = true
	}
}

func eachRule(ns *topology.Namespace, f func(ruleKey, *topology.Rule)) {
	if ns.Firewall == nil {
		return
	}
	for _, t := range ns.Firewall.Tables {
		for _, c := range t.Chains {
			for _, r := range c.All() {
				f(ruleKey{ns.Name, t.Name, c.Name, r.Text}, r)
			}
		}
	}
}

func (s *Set) compareLB(p, ns *topology.Namespace) {
	before := map[destKey]*topology.IPVSDest{}
	eachDest(p, func(k destKey, d *topology.IPVSDest) { before[k] = d })
	eachDest(ns, func(k destKey, d *topology.IPVSDest) {
		o, ok := before[k]
		delete(before, k)
		switch {
		case !ok:
			s.dests[k] = Change{Added: true}
			s.netns[ns.Name] = true
		case o.Weight != d.Weight || o.Forward != d.Forward:
			s.dests[k] = Change{Modified: true, Delta: conns(d) - min(conns(d), conns(o))}
			s.netns[ns.Name] = true
		case conns(d) != conns(o):
			s.dests[k] = Change{Delta: conns(d) - min(conns(d), conns(o))}
		}
	})
	for k := range before {
		s.Removed = append(s.Removed, fmt.Sprintf("backend %s %s -> %s", k.netns, k.svc, k.dest))
		s.netns[ns.Name] = true
	}
}

func conns(d *topology.IPVSDest) uint64 {
	n := uint64(d.ActiveConns + d.InactConns)
	if d.Stats != nil {
		n = max(n, d.Stats.Conns)
	}
	return n
}

func eachDest(ns *topology.Namespace, f func(destKey, *topology.IPVSDest)) {
	for _, svc := range ns.LBServices() {
		for _, d := range svc.Dests {
			f(destKey{ns.Name, SvcKey(svc), DestKey(d)}, d)
		}
	}
}

// SvcKey names an LB service: "fwm 256" or "tcp 10.0.0.5:80".
func SvcKey(svc *topology.IPVSService) string {
	if svc.FWMark != 0 {
		return fmt.Sprintf("fwm %d", svc.FWMark)
	}
	return fmt.Sprintf("%s %s:%d", svc.Proto, svc.Addr, svc.Port)
}

// DestKey names a real server: "10.0.0.4:0".
func DestKey(d *topology.IPVSDest) string { return fmt.Sprintf("%s:%d", d.Addr, d.Port) }

// Rule returns the change of a rule, by namespace, table, chain and text.
func (s Set) Rule(netns, table, chain, text string) (Change, bool) {
	c, ok := s.rules[ruleKey{netns, table, chain, text}]
	return c, ok
}

// Dest returns the change of a backend of a service (SvcKey, DestKey).
func (s Set) Dest(netns, svc, dest string) (Change, bool) {
	c, ok := s.dests[destKey{netns, svc, dest}]
	return c, ok
}

// Netns reports whether something in the namespace was added, modified
// or removed (counters alone do not count), or the namespace is new.
func (s Set) Netns(name string) bool { return s.netns[name] }

// Count is the number of highlighted changes and removals.
func (s Set) Count() int {
	n := len(s.Removed)
	for _, c := range s.rules {
		if c.Highlight() {
			n++
		}
	}
	for _, c := range s.dests {
		if c.Highlight() {
			n++
		}
	}
	return n
}
