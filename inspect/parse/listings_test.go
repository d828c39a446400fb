package parse

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

// listingFormats are the formats fixtures/cmdout/listings/record.sh
// renders every recorded iptables-save in, and whether each carries the
// policies' and rules' counters (exactly: -L without -x rounds large ones,
// which the reader then does not keep).
var listingFormats = []struct {
	dir      string
	counters bool
}{{"S", false}, {"S-v", true}, {"L-nvx", true}, {"L-nv", true}}

// listingSources maps each recorded iptables-save fixture (path under
// fixtures/) to its listings directory.
func listingSources(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join("..", "..", "fixtures")
	out := map[string]string{}
	err := filepath.WalkDir(filepath.Join(root, "cmdout", "listings"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "S" {
			dir := filepath.Dir(path)
			rel, _ := filepath.Rel(filepath.Join(root, "cmdout", "listings"), dir)
			out[filepath.Join(root, rel+".txt")] = dir
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil || len(out) < 40 {
		t.Fatalf("listings: %d sources, %v", len(out), err)
	}
	return out
}

// TestListingsReadBack: every recorded fixture, listed by iptables itself
// as `-S`, `-S -v`, `-L -n -v -x --line-numbers` and `-L -n -v`, reads back
// to the model its iptables-save gives: the same chains, policies and rules
// (matches, targets, their options and typed arguments), and the same
// counters wherever the format carries them exactly.
func TestListingsReadBack(t *testing.T) {
	sources := listingSources(t)
	// every recorded fixture with rules has listings (record.sh)
	for _, path := range fixtures(t, "iptables") {
		if strings.Contains(path, "text-only") || strings.Contains(path, filepath.Join("cmdout", "listings")) {
			continue
		}
		if st, err := os.Stat(path); err == nil && st.Size() > 0 && sources[path] == "" {
			t.Errorf("%s has no listings: run fixtures/cmdout/listings/record.sh", path)
		}
	}
	names := make([]string, 0, len(sources))
	for src := range sources {
		names = append(names, src)
	}
	sort.Strings(names)
	n := 0
	for _, src := range names {
		dir := sources[src]
		want, err := IptablesSave(src, strings.NewReader(readFixture(t, src)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range listingFormats {
			files, _ := filepath.Glob(filepath.Join(dir, f.dir, "iptables-*.txt"))
			if len(files) != len(want.Tables) {
				t.Errorf("%s/%s: %d tables listed, iptables-save has %d", dir, f.dir, len(files), len(want.Tables))
			}
			for _, file := range files {
				table := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "iptables-"), ".txt")
				got, err := IptablesTable(file, table, strings.NewReader(readFixture(t, file)))
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				if len(got.Unparsed) > 0 {
					t.Errorf("%s: not understood %+v", file, got.Unparsed)
				}
				sameTable(t, file, want.Table(table), got.Table(table), f.counters)
				n++
			}
		}
	}
	t.Logf("%d listings of %d fixtures read back", n, len(sources))
}

// sameTable compares what a listing can carry: chains by name (a listing
// orders them its own way), policies, rules in order with their typed
// arguments; counters when the format has them.
func sameTable(t *testing.T, file string, want, got *topology.Table, counters bool) {
	t.Helper()
	if want == nil || got == nil {
		t.Errorf("%s: table missing (iptables-save %v, listing %v)", file, want != nil, got != nil)
		return
	}
	chains := map[string]*topology.Chain{}
	for _, c := range got.Chains {
		chains[c.Name] = c
	}
	if len(chains) != len(want.Chains) {
		t.Errorf("%s: %d chains, iptables-save has %d", file, len(chains), len(want.Chains))
	}
	ign := cmpopts.IgnoreFields(topology.Rule{}, "Text", "Line", "HasCounters", "Packets", "Bytes")
	for _, wc := range want.Chains {
		gc := chains[wc.Name]
		if gc == nil {
			t.Errorf("%s: chain %s missing", file, wc.Name)
			continue
		}
		if gc.Policy != wc.Policy {
			t.Errorf("%s: chain %s policy %s, want %s", file, wc.Name, gc.Policy, wc.Policy)
		}
		if counters && (gc.Packets != wc.Packets || gc.Bytes != wc.Bytes) && !lostToRounding(file, gc.Packets, gc.Bytes, wc.Packets, wc.Bytes) {
			t.Errorf("%s: chain %s counters %d/%d, want %d/%d", file, wc.Name, gc.Packets, gc.Bytes, wc.Packets, wc.Bytes)
		}
		if len(gc.Rules) != len(wc.Rules) {
			t.Errorf("%s: chain %s has %d rules, want %d", file, wc.Name, len(gc.Rules), len(wc.Rules))
			continue
		}
		for i, wr := range wc.Rules {
			gr := gc.Rules[i]
			if gr.Render() != wr.Render() || gr.Text != gr.Render() {
				t.Errorf("%s:%d: read back as\n  %s\nwant\n  %s", file, gr.Line, gr.Render(), wr.Render())
				continue
			}
			if d := cmp.Diff(wr, gr, ign, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("%s:%d: (-iptables-save +listing)\n%s", file, gr.Line, d)
			}
			exact := gr.HasCounters && gr.Packets == wr.Packets && gr.Bytes == wr.Bytes
			lost := !gr.HasCounters && lostToRounding(file, gr.Packets, gr.Bytes, wr.Packets, wr.Bytes)
			if counters && wr.HasCounters && !exact && !lost {
				t.Errorf("%s:%d: counters %v %d/%d, want %d/%d", file, gr.Line, gr.HasCounters, gr.Packets, gr.Bytes, wr.Packets, wr.Bytes)
			}
		}
	}
}

// lostToRounding: -L without -x prints counters over 99999 rounded, which
// the reader does not keep (it reads 0).
func lostToRounding(file string, gp, gb, wp, wb uint64) bool {
	return filepath.Base(filepath.Dir(file)) == "L-nv" && gp == 0 && gb == 0 && (wp > 99999 || wb > 99999)
}
