package inspect

import (
	"context"
	"fmt"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/meshtrace/meshtrace/topology"
)

// Snapshot reads the counters of the namespaces named (nil: every one Live
// would read), cheaply enough to take before and after a trace: per
// namespace its Counters, its firewall and the other backend's (every
// rule's and chain policy's counters), its IPVS table (every service's and
// destination's) and its xfrm SAs (their packets and drops), nothing else
// (no links, routes, sockets, conntrack entries). topology.DiffCounters of
// two snapshots says what moved. Options are Live's: the host, the netns
// directories, the firewall mode, the readers and the module gate; a
// namespace that fails to read carries the failure in its Errors.
func Snapshot(ctx context.Context, o Options, names []string) (*topology.Model, error) {
	r, refs, err := o.begin()
	if err != nil {
		return nil, err
	}
	if names != nil {
		var keep []NetnsRef
		for _, n := range names {
			i := slices.IndexFunc(refs, func(ref NetnsRef) bool { return ref.Name == n })
			if i < 0 {
				return nil, fmt.Errorf("snapshot: no netns %s", n)
			}
			keep = append(keep, refs[i])
		}
		refs = keep
	}
	m := &topology.Model{Source: "live", Namespaces: make([]*topology.Namespace, len(refs))}
	notes := make([][]string, len(refs))
	var g errgroup.Group
	workers := o.Workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	g.SetLimit(workers)
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			break
		}
		g.Go(func() error {
			m.Namespaces[i], notes[i] = snapshotNetns(r, &o, ref)
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	m.Notes = collectNotes(m, notes)
	return m, nil
}

// snapshotNetns reads one namespace's counters (see Snapshot).
func snapshotNetns(r Readers, o *Options, ref NetnsRef) (*topology.Namespace, []string) {
	ns := &topology.Namespace{NetnsRef: ref.NetnsRef, Inode: ref.Inode}
	t := newTarget(ref)
	t.mods = o.Modules
	defer t.close()
	var notes []string
	fail := failer(ns, &notes)
	c, err := r.Counters.ReadCounters(t)
	if err != nil {
		fail("counters", err)
	}
	ns.Counters = c
	if unreachable(err) {
		return ns, notes
	}
	notes = append(notes, readFirewallIPVS(r, o.Firewall, t, ns, fail)...)
	ctr := *o
	ctr.Counters = false // read above
	notes = append(notes, readExtra(r, &ctr, t, ns, fail)...)
	return ns, notes
}
