package inspect

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/topology"
)

// writeModelBundle writes m with WriteBundle into dir, as the in-process
// collection does.
func writeModelBundle(t *testing.T, m *topology.Model, dir string) {
	t.Helper()
	out, err := safefile.CreateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := WriteBundle(out, m, nil); err != nil {
		t.Fatal(err)
	}
}

// roundTripOpts compare what a bundle carries: where a line was read from
// and what could not be read are the source's, not the model's.
var roundTripOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, topology.MAC{}),
	cmpopts.IgnoreFields(topology.Rule{}, "Line"),
	cmpopts.IgnoreFields(topology.Namespace{}, "Errors", "Counters"), // counters: not written
	cmpopts.IgnoreFields(topology.Firewall{}, "Unparsed"),
	cmpopts.IgnoreUnexported(topology.Rule{}),
	cmpopts.IgnoreFields(topology.IPVSDest{}, "Stats", "ActiveConns", "InactConns"),
	cmpopts.IgnoreFields(topology.IPVSService{}, "Stats"),
}

// TestRenderedBundleReadsBack renders every recorded bundle's namespaces
// into a bundle of their own (the in-process collection's formats) and
// reads it back: the same links, rules and counters, IPVS table (but the
// counters ipvsadm-save does not print), routes, neighbours, FDB, sysctls,
// sockets, conntrack entries and IPsec state.
func TestRenderedBundleReadsBack(t *testing.T) {
	dirs, err := filepath.Glob("../fixtures/*/*/netns")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../fixtures/*/*/*/netns")
	dirs = append(dirs, more...)
	n := 0
	for _, d := range dirs {
		dir := filepath.Dir(d)
		if strings.Contains(dir, "/listings/") {
			continue
		}
		t.Run(strings.TrimPrefix(dir, "../fixtures/"), func(t *testing.T) {
			want, err := Bundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			writeModelBundle(t, want, out)
			got, err := Bundle(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, ns := range got.Namespaces {
				if len(ns.Errors) > 0 {
					t.Errorf("netns %s: the rendered files do not read back cleanly: %q", ns.Name, ns.Errors)
				}
				if ns.Firewall != nil && len(ns.Firewall.Unparsed) > 0 {
					t.Errorf("netns %s: unparsed %+v", ns.Name, ns.Firewall.Unparsed)
				}
			}
			if d := cmp.Diff(want.Namespaces, got.Namespaces, roundTripOpts); d != "" {
				t.Errorf("read back (-recorded +rendered):\n%s", d)
			}
			// The set of namespaces is whole only when the model said so
			// (a live read's does; a recorded bundle without a
			// NAMESPACES.txt does not), and it reads back so.
			if got.NetnsComplete != want.NetnsComplete {
				t.Errorf("netns_complete %v read back as %v", want.NetnsComplete, got.NetnsComplete)
			}
			want.NetnsComplete = true
			out = t.TempDir()
			writeModelBundle(t, want, out)
			if got, err := Bundle(out); err != nil || !got.NetnsComplete {
				t.Errorf("a whole set of namespaces written reads back as not whole (%v)", err)
			}
		})
		n++
	}
	if n < 10 {
		t.Fatalf("only %d recorded bundles", n)
	}
}
