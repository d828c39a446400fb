package capture

import (
	"errors"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// noModules is a module gate that finds none.
type noModules struct{}

func (noModules) Present(string) (bool, string) { return false, "not loaded (fake)" }

// TestKernelStopsAtTheGate: with the modules missing, no capture socket
// is attempted (the namespace path does not exist: an attempt would fail
// opening it, with another error). The conntrack dump's gate is
// TestKernelConntrackEmptyTable's.
func TestKernelStopsAtTheGate(t *testing.T) {
	var ae *kmod.AbsentError
	_, err := AFPacket{Modules: noModules{}}.Open(trace.Point{Netns: "gone", Ifname: "eth0", Path: "/nonexistent/meshtrace/netns"}, trace.DirIn, nil)
	if !errors.As(err, &ae) || ae.Module != "af_packet" || !strings.Contains(err.Error(), "netns gone") {
		t.Errorf("capture: %v, want the gate's error naming the point", err)
	}
}

// gatedTables answers conntrack as Kernel does with nf_conntrack missing.
type gatedTables struct{ asked int }

func (g *gatedTables) Conntrack(string) ([]topology.Conntrack, error) {
	g.asked++
	return nil, kmod.NeedConntrack.Check(noModules{})
}

func (g *gatedTables) IPVSConns(string) ([]trace.IPVSConn, error) { return nil, nil }

// TestReadTablesNotesAMissingModuleOnce: the reason is the node's, one note.
func TestReadTablesNotesAMissingModuleOnce(t *testing.T) {
	g := &gatedTables{}
	points := []trace.Point{{Netns: "host", Path: "/a"}, {Netns: "ingress_sbox", Path: "/b"}}
	ct, _, notes := readTables(g, points, nil)
	if g.asked != 2 || len(ct) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "conntrack table not read: nf_conntrack is not loaded") {
		t.Errorf("asked %d, conntrack %v, notes %q: want no entries and one note", g.asked, ct, notes)
	}
}

// askedGate finds every module present and records what it was asked.
type askedGate struct{ asked []string }

func (g *askedGate) Present(m string) (bool, string) {
	g.asked = append(g.asked, m)
	return true, "present (test)"
}

// TestKernelConntrackEmptyTable: trace's conntrack read keeps the live
// reader's rule: a namespace whose table is empty (nf_conntrack_count 0)
// is read as empty without a ctnetlink dump, which would walk the node's
// whole conntrack hash (and, where nf_conntrack is not loaded, load it):
// not even the module gate is asked for one. Where the table holds
// entries, they are read.
func TestKernelConntrackEmptyTable(t *testing.T) {
	path := testutil.Netns(t)
	g := &askedGate{}
	ct, err := Kernel{Modules: g}.Conntrack(path)
	if err != nil || len(ct) != 0 || len(g.asked) != 0 {
		t.Fatalf("empty table: %d entries, error %v, gate asked for %q: want none read and no dump prepared", len(ct), err, g.asked)
	}
	// Track one datagram: a conntrack match makes the namespace's
	// netfilter track its connections.
	if out, err := netnsx.Output(path, exec.Command("iptables", "-w", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT")); err != nil {
		t.Fatalf("iptables: %v %s", err, out)
	}
	testutil.SendUDP(t, path, netip.MustParseAddrPort("127.0.0.1:9"))
	ct, err = Kernel{Modules: g}.Conntrack(path)
	if err != nil || len(ct) == 0 {
		t.Fatalf("after a datagram: %d entries, error %v", len(ct), err)
	}
	// With the modules missing, the table that now has entries is not
	// dumped: the gate's error, a note of the trace.
	var ae *kmod.AbsentError
	if ct, err = (Kernel{Modules: noModules{}}).Conntrack(path); !errors.As(err, &ae) || ae.Module != "nf_conntrack" || ct != nil {
		t.Errorf("modules missing: %d entries, error %v, want the gate's error", len(ct), err)
	}
}
