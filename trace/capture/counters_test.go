package capture

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// fakeCounters serves each call's snapshot from a list: a rule's packets,
// an SNMP counter, per node.
type fakeCounters struct {
	calls int
	asked map[string][]string
	rule  []uint64 // the DROP rule's packets at each call
	fail  string   // a node that fails
	bad   string   // a namespace that reads with an error
}

var _ CounterReader = (*fakeCounters)(nil)

func (f *fakeCounters) Snapshot(_ context.Context, node string, names []string) (*topology.Model, error) {
	if f.asked == nil {
		f.asked = map[string][]string{}
	}
	f.asked[node] = names
	if node == f.fail {
		return nil, errors.New("no such node")
	}
	n := f.rule[min(f.calls, len(f.rule)-1)]
	f.calls++
	m := &topology.Model{}
	for _, name := range names {
		ns := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: name}, Counters: &topology.Counters{SNMP: map[string]int64{}}}
		ns.Firewall = &topology.Firewall{Tables: []*topology.Table{{Name: "filter", Chains: []*topology.Chain{{Name: "INPUT", Policy: "ACCEPT",
			Rules: []*topology.Rule{{Text: "-A INPUT -p udp -m udp --dport 4789 -j DROP", HasCounters: true, Packets: n}}}}}}}
		if name == f.bad {
			ns.Errors = []string{"iptables: exit 1"}
		}
		m.Namespaces = append(m.Namespaces, ns)
	}
	return m, nil
}

// TestCounterWindow: the plan's namespaces per node (and each node's
// host) are snapshotted; what moved is keyed by node and netns; a
// namespace read with errors, or a node that failed, is not "read".
func TestCounterWindow(t *testing.T) {
	_, plan := fakeMesh()
	for i := range plan.Points {
		plan.Points[i].Path = "/fake"
	}
	nodes := planNetns(plan)
	if got := nodes[""]; !slices.Equal(got, []string{"host", "ingress_sbox", "1-ovl0000001", "0a1b2c3d4e5f"}) {
		t.Errorf("node0's namespaces %v", got)
	}
	if got := nodes["node1"]; !slices.Equal(got, []string{"host", "1-ovl0000001", "5f4e3d2c1b0a"}) {
		t.Errorf("node1's namespaces %v", got)
	}
	f := &fakeCounters{rule: []uint64{10, 14}, bad: "ingress_sbox", fail: "node1"}
	var notes []string
	before := SnapCounters(context.Background(), f, nodes, &notes)
	after := SnapCounters(context.Background(), f, nodes, &notes)
	w := Window(before, after)
	if len(notes) != 2 {
		t.Errorf("notes %q, want node1's failure twice", notes)
	}
	if !w.Read[trace.NsKey("", "host")] || w.Read[trace.NsKey("", "ingress_sbox")] || w.Read[trace.NsKey("node1", "host")] {
		t.Errorf("read %v", w.Read)
	}
	ds := w.Deltas[trace.NsKey("", "host")]
	if len(ds) != 1 || ds[0].Kind != topology.CounterRule || ds[0].Delta != 4 {
		t.Errorf("host deltas %+v", ds)
	}
	if Window(nil, after) != nil {
		t.Error("a window without a first snapshot")
	}
}
