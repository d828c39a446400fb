package bundles

import (
	"context"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

// TestWriteSwarm writes a small swarm and reads every node's bundle back
// with meshtrace's reader: every namespace and peer read without an
// error, every published port complete through the node's IPVS table of
// every task cluster-wide, the overlay's FDB holding every remote
// endpoint, the Docker join naming every task's node, and doctor clean
// of errors.
func TestWriteSwarm(t *testing.T) {
	const nodes, per, services = 3, 8, 4
	dirs, err := WriteSwarm(t.TempDir(), SwarmSpec{Nodes: nodes, TasksPerNode: per, Services: services})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != nodes {
		t.Fatalf("%d bundles, want %d", len(dirs), nodes)
	}
	marks := map[uint32]bool{}
	for _, dir := range dirs {
		m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Namespaces) != 3+per {
			t.Errorf("%s: %d namespaces, want %d", dir, len(m.Namespaces), 3+per)
		}
		for _, ns := range m.Namespaces {
			if len(ns.Errors) > 0 {
				t.Errorf("%s: netns %s: %q", dir, ns.Name, ns.Errors)
			}
			for _, l := range ns.Links {
				if l.Kind == "veth" && (l.Peer == nil || l.Peer.Netns == "") {
					t.Errorf("%s: %s/%s: peer unresolved", dir, ns.Name, l.Name)
				}
			}
			if ns.Firewall != nil && len(ns.Firewall.Unparsed) > 0 {
				t.Errorf("%s: %s: unparsed %+v", dir, ns.Name, ns.Firewall.Unparsed[0])
			}
		}
		pub := topology.PublishedPorts(m)
		if len(pub) != services {
			t.Errorf("%s: %d published ports, want %d", dir, len(pub), services)
		}
		for _, p := range pub {
			marks[p.FWMark] = true
			if !p.Complete || len(p.Backends) != nodes*per/services {
				t.Errorf("%s: %s/%d: complete %v, %d backends; want %d", dir, p.Proto, p.Port, p.Complete, len(p.Backends), nodes*per/services)
			}
		}
		ovl := m.Lookup(swOverlay)
		if remote := nodes*per - per + nodes - 1; ovl == nil || countDst(ovl.FDB) != remote || len(ovl.Neighbours) != remote {
			t.Errorf("%s: overlay FDB/neighbours do not hold the %d remote endpoints", dir, remote)
		}
		if m.Docker == nil {
			t.Fatalf("%s: no Docker metadata", dir)
		}
		rep := doctor.Check(m, doctor.Options{})
		for _, f := range rep.Findings {
			if f.Severity == "error" {
				t.Errorf("%s: doctor: %s %s", dir, f.Code, f.Summary)
			}
		}
	}
	if len(marks) < 2 {
		t.Errorf("fwmarks %v: want them to differ between nodes", marks)
	}
}

func countDst(fdb []topology.FDB) int {
	n := 0
	for _, e := range fdb {
		if e.Dst.IsValid() && strings.Contains(e.Dev, "vxlan") {
			n++
		}
	}
	return n
}
