package inspectbench

import (
	"testing"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestLiveSpeed times the live reader, the floor and the operator loop on
// a 200-namespace node (Run, the code scripts/bench runs) and logs the
// inspect-200 line; it fails when a reader misses something, never on
// timing (the machine is shared).
func TestLiveSpeed(t *testing.T) {
	testutil.NeedRoot(t)
	s, err := Run(Small, true, Options{ScriptDir: ".", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(Line200(s))
}

// TestFloorReadsEveryNamespace checks the floor on a small node: every
// namespace read, the requests a task needs made, replies received.
func TestFloorReadsEveryNamespace(t *testing.T) {
	testutil.NeedRoot(t)
	nd, err := Build(6)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nd.Close(); err != nil {
			t.Error(err)
		}
	})
	st, _, err := nd.Floor()
	if err != nil {
		t.Fatal(err)
	}
	if st.Namespaces != 6 {
		t.Errorf("floor read %d namespaces, want 6", st.Namespaces)
	}
	// links, addrs, routes, neigh, 3 nf_tables dumps, the IPVS family:
	// at least 8 requests a namespace; more with FDB, sockets, conntrack.
	if st.Requests < 8*6 || st.Bytes == 0 {
		t.Errorf("floor made %d requests, received %d bytes", st.Requests, st.Bytes)
	}
	m, _, err := nd.Live(inspect.FirewallAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Namespaces) != st.Namespaces {
		t.Errorf("live read %d namespaces, floor %d", len(m.Namespaces), st.Namespaces)
	}
}

// TestLargeNodeReadsEveryNamespace builds a node of several worlds (as
// inspect-2000 does, smaller) and checks the live reader reads all of it
// with every veth peer resolved.
func TestLargeNodeReadsEveryNamespace(t *testing.T) {
	testutil.NeedRoot(t)
	if testing.Short() {
		t.Skip("builds 460 namespaces")
	}
	nd, err := Build(460)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nd.Close(); err != nil {
			t.Error(err)
		}
	})
	if len(nd.Worlds) < 2 || nd.Namespaces() != 460 {
		t.Fatalf("%d worlds, %d namespaces; want several and 460", len(nd.Worlds), nd.Namespaces())
	}
	if _, _, err := nd.Live(inspect.FirewallAuto); err != nil {
		t.Fatal(err)
	}
	st, _, err := nd.Floor()
	if err != nil || st.Namespaces != 460 {
		t.Fatalf("floor: %d namespaces, %v", st.Namespaces, err)
	}
}

// BenchmarkLive times the live reader and the floor on the 200-namespace
// node, each round in the same run, and reports their ratio.
func BenchmarkLive(b *testing.B) {
	testutil.NeedRoot(b)
	nd, err := Build(Small)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nd.Close() })
	var live, floor Cost
	for b.Loop() {
		_, c, err := nd.Live(inspect.FirewallAuto)
		if err != nil {
			b.Fatal(err)
		}
		live.Wall += c.Wall
		_, c, err = nd.Floor()
		if err != nil {
			b.Fatal(err)
		}
		floor.Wall += c.Wall
	}
	b.ReportMetric(live.Wall.Seconds()/float64(b.N), "live-s/read")
	b.ReportMetric(floor.Wall.Seconds()/float64(b.N), "floor-s/read")
	b.ReportMetric(ratio(live.Wall, floor.Wall), "live/floor")
}
