package capture

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// CounterReader snapshots the kernel counters of a node's namespaces
// (inspect.Snapshot: every rule's and chain policy's, /proc/net/snmp and
// netstat, nf_conntrack's statistics, the links', IPVS services' and
// destinations'), read-only. Run takes one before the capture and one
// after, and what moved attributes the flows that stopped
// (trace.AttributeLosses).
type CounterReader interface {
	// Snapshot reads the namespaces named of a node ("" = the one node of
	// a live host); a namespace it could not read carries its Errors.
	Snapshot(ctx context.Context, node string, netns []string) (*topology.Model, error)
}

// CounterSnap is one snapshot of the counters of some nodes' namespaces.
type CounterSnap struct {
	at     time.Time
	models map[string]*topology.Model // by node
}

// planNetns lists each node's namespaces on the plan's points, and its
// host (the underlay a VXLAN packet crosses); the client's namespace is
// no node's.
func planNetns(plan *trace.CapturePlan) map[string][]string {
	out := map[string][]string{}
	for _, p := range plan.Points {
		if p.Path == "" || p.Netns == "client" || p.Netns == "" {
			continue
		}
		if !slices.Contains(out[p.Node], "host") {
			out[p.Node] = append(out[p.Node], "host")
		}
		if !slices.Contains(out[p.Node], p.Netns) {
			out[p.Node] = append(out[p.Node], p.Netns)
		}
	}
	return out
}

// SnapCounters takes one snapshot of the namespaces named of each node
// (nil names: every one); a node that fails is a note.
func SnapCounters(ctx context.Context, r CounterReader, nodes map[string][]string, notes *[]string) *CounterSnap {
	s := &CounterSnap{at: time.Now(), models: map[string]*topology.Model{}}
	for node, names := range nodes {
		m, err := r.Snapshot(ctx, node, names)
		if err != nil {
			*notes = append(*notes, fmt.Sprintf("counters of node %q: %v", node, err))
			continue
		}
		s.models[node] = m
	}
	return s
}

// Window diffs two snapshots: the counters that moved, by trace.NsKey,
// and the namespaces read without error both times.
func Window(before, after *CounterSnap) *trace.CounterWindow {
	if before == nil || after == nil {
		return nil
	}
	w := &trace.CounterWindow{Start: before.at, End: after.at, Deltas: map[string][]topology.CounterDelta{}, Read: map[string]bool{}}
	for node, a := range after.models {
		b := before.models[node]
		if b == nil {
			continue
		}
		for _, ans := range a.Namespaces {
			bns := b.Lookup(ans.Name)
			if bns == nil || len(ans.Errors) > 0 || len(bns.Errors) > 0 || ans.Counters == nil || bns.Counters == nil {
				continue
			}
			k := trace.NsKey(node, ans.Name)
			w.Read[k] = true
			if ds := topology.DiffNamespaceCounters(bns, ans); len(ds) > 0 {
				w.Deltas[k] = ds
			}
		}
	}
	return w
}
