package inspect

import (
	"fmt"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// begin completes o with its defaults (the firewall mode, the real readers
// where o has none, the host's module gate) and discovers the namespaces
// to read, the host first: what Live and Snapshot start with.
func (o *Options) begin() (Readers, []NetnsRef, error) {
	if o.Readers.Netns == nil {
		if err := needLinux(); err != nil { // the real namespaces
			return Readers{}, nil, err
		}
	}
	switch o.Firewall {
	case "":
		o.Firewall = FirewallAuto
	case FirewallAuto, FirewallExec, FirewallNetlink:
	default:
		return Readers{}, nil, fmt.Errorf("firewall mode %q: want auto, exec or netlink", o.Firewall)
	}
	r := o.Readers.withDefaults()
	if o.Modules == nil {
		o.Modules = kmod.Host()
	}
	dirs := o.NetnsDirs
	if dirs == nil {
		dirs = DefaultNetnsDirs
	}
	refs, err := r.Netns.Discover(o.HostNetns, dirs)
	if err != nil {
		return Readers{}, nil, err
	}
	if len(refs) == 0 || refs[0].Name != "host" {
		return Readers{}, nil, fmt.Errorf("live read: discovery did not list the host namespace first")
	}
	return r, refs, nil
}

// failer returns what records a failure to read part of ns: an error of
// the namespace, or, for a read the module gate stopped, a note (not
// collected, and why) appended to notes.
func failer(ns *topology.Namespace, notes *[]string) func(what string, err error) {
	return func(what string, err error) {
		if note, ok := skipped(err); ok {
			*notes = append(*notes, note)
			return
		}
		ns.Errors = append(ns.Errors, fmt.Sprintf("netns %s: %s: %v", ns.Name, what, err))
	}
}

// readFirewallIPVS reads t's firewall the way mode says (readFirewall) and
// its IPVS table into ns.
func readFirewallIPVS(r Readers, mode FirewallMode, t *Target, ns *topology.Namespace, fail func(what string, err error)) (notes []string) {
	fw, note, err := readFirewall(r.Firewall, t, mode)
	if err != nil {
		fail("firewall", err)
	}
	ns.Firewall = fw
	if note != "" {
		notes = append(notes, note)
	}
	if v, err := r.IPVS.ReadIPVS(t); err != nil {
		fail("ipvs", err)
	} else {
		ns.IPVS = v
	}
	return notes
}

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
