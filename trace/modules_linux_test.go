package trace

import (
	"errors"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// noModules is a module gate that finds none.
type noModules struct{}

func (noModules) Present(string) (bool, string) { return false, "not loaded (fake)" }

// TestKernelStopsAtTheGate: with the modules missing, neither the
// conntrack dump nor a capture socket is attempted (the namespace path does
// not exist: an attempt would fail opening it, with another error).
func TestKernelStopsAtTheGate(t *testing.T) {
	var ae *kmod.AbsentError
	_, err := Kernel{Modules: noModules{}}.Conntrack("/nonexistent/meshtrace/netns")
	if !errors.As(err, &ae) || ae.Module != "nf_conntrack" {
		t.Errorf("conntrack: %v, want the gate's error", err)
	}
	_, err = AFPacket{Modules: noModules{}}.Open(Point{Netns: "gone", Ifname: "eth0", Path: "/nonexistent/meshtrace/netns"}, DirIn, nil)
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

func (g *gatedTables) IPVSConns(string) ([]IPVSConn, error) { return nil, nil }

// TestReadTablesNotesAMissingModuleOnce: the reason is the node's, one note.
func TestReadTablesNotesAMissingModuleOnce(t *testing.T) {
	g := &gatedTables{}
	points := []Point{{Netns: "host", Path: "/a"}, {Netns: "ingress_sbox", Path: "/b"}}
	ct, _, notes := readTables(g, points, nil)
	if g.asked != 2 || len(ct) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "conntrack table not read: nf_conntrack is not loaded") {
		t.Errorf("asked %d, conntrack %v, notes %q: want no entries and one note", g.asked, ct, notes)
	}
}
