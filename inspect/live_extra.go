package inspect

import "github.com/meshtrace/meshtrace/topology"

// readExtra reads the rest of a namespace after its firewall: the other
// iptables backend's rules (readOtherFirewall), its xfrm SAs and policies,
// and, with Options.Counters, its counters. Failures go to fail (a read
// the module gate stopped becomes a note there); notes are facts for the
// model.
func readExtra(r Readers, o *Options, t *Target, ns *topology.Namespace, fail func(what string, err error)) (notes []string) {
	other, note, err := readOtherFirewall(r.Firewall, t, ns.Firewall)
	if err != nil {
		fail("legacy firewall", err)
	}
	ns.OtherFirewall = other
	if note != "" {
		notes = append(notes, note)
	}
	if x, err := r.Xfrm.ReadXfrm(t); err != nil {
		fail("xfrm", err)
	} else {
		ns.Xfrm = x
	}
	if o.Counters {
		c, err := r.Counters.ReadCounters(t)
		if err != nil {
			fail("counters", err)
		}
		ns.Counters = c // what could be read, also on error
	}
	return notes
}
