package parse

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
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
}{{"S", false}, {"S-v", true}, {"L-nvx", true}, {"L-nv", true}, {"L-n", false}, {"L", false}}

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
// as `-S`, `-S -v`, `-L -n -v -x --line-numbers`, `-L -n -v` and `-L -n`,
// reads back to the model its iptables-save gives: the same chains,
// policies and rules (matches, targets, their options and typed
// arguments), and the same counters wherever the format carries them
// exactly. `-L -n` hides the interfaces: its rules are the save's without
// them, each one undecidable.
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
			if len(files) < len(want.Tables) {
				t.Errorf("%s/%s: %d tables listed, iptables-save has %d", dir, f.dir, len(files), len(want.Tables))
			}
			for _, file := range files {
				table := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "iptables-"), ".txt")
				got, err := IptablesTable(file, table, strings.NewReader(readFixture(t, file)))
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				if want.Table(table) == nil {
					// a table the namespace does not have lists as
					// its built-in chains, empty
					emptyTable(t, file, got.Table(table))
					continue
				}
				sameTable(t, file, want.Table(table), got, f.counters)
				n++
			}
		}
	}
	t.Logf("%d listings of %d fixtures read back", n, len(sources))
	// -L without -n: "anywhere", protocol names and netbase's service
	// names read back exactly; most rules do.
	t.Logf("-L: %d rules read back exactly, %d undecidable for their names", namesExact, namesSkipped)
	if namesExact < 4*namesSkipped {
		t.Errorf("-L: only %d rules read back exactly, %d undecidable for their names", namesExact, namesSkipped)
	}
}

// sameTable compares what a listing can carry: chains by name (a listing
// orders them its own way), policies, rules in order with their typed
// arguments; counters when the format has them.
//
// In cmdout/listing-variety, rules commented mt-undecidable hold a match -L
// prints as prose that does not read back: from -L they must be
// Undecidable; rules commented mt-untranslated have target options -L
// does not translate: from -L they come without them, reported in
// Unparsed.
// namesSkipped and namesExact count the rules of -L listings (names) that
// read back undecidable for their names, and those that read back exactly.
var namesSkipped, namesExact int

func sameTable(t *testing.T, file string, want *topology.Table, fw *topology.Firewall, counters bool) {
	t.Helper()
	got := fw.Table(want.Name)
	listL := strings.HasPrefix(filepath.Base(filepath.Dir(file)), "L-")
	names := filepath.Base(filepath.Dir(file)) == "L"
	noIfaces := filepath.Base(filepath.Dir(file)) == "L-n" || names
	const noV = "listed without -v, which hides the rule's in/out interfaces (list with iptables -L -n -v)"
	unparsed := map[int]bool{}
	for _, u := range fw.Unparsed {
		unparsed[u.Line] = true
	}
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
			switch mark := commentOf(wr); {
			case listL && mark == "mt-undecidable":
				if gr.Undecidable == "" || wr.Undecidable != "" {
					t.Errorf("%s:%d: %s read back decidable: %s", file, gr.Line, wr.Text, gr.Text)
				}
				continue
			case listL && mark == "mt-untranslated":
				if len(gr.TargetOpts) > 0 || !unparsed[gr.Line] || (gr.Undecidable != "" && !noIfaces) {
					t.Errorf("%s:%d: untranslated target options of %s: %+v, unparsed %v", file, gr.Line, wr.Text, gr.TargetOpts, unparsed[gr.Line])
				}
				wr2 := *wr
				wr2.TargetOpts = nil
				wr = &wr2
			case names && (unparsed[gr.Line] || gr.Undecidable != noV):
				// -L without -n: names (a host, a network, a service
				// not in netbase's list, LOG's level, tcp flags) the
				// reader cannot turn back into numbers; the rule must
				// be undecidable, or keep what the target needs only
				if gr.Undecidable == "" {
					t.Errorf("%s:%d: %s read back decidable from names", file, gr.Line, wr.Text)
				}
				namesSkipped++
				continue
			case unparsed[gr.Line]:
				t.Errorf("%s:%d: not understood", file, gr.Line)
			}
			if noIfaces {
				if !strings.Contains(gr.Undecidable, "without -v") {
					t.Errorf("%s:%d: %s read back decidable from a listing without interfaces", file, gr.Line, gr.Text)
				}
				wr2, gr2 := *wr, *gr
				wr2.InIface, wr2.OutIface, wr2.Undecidable = nil, nil, ""
				gr2.Undecidable = ""
				if wr.Undecidable != "" && !strings.Contains(gr.Undecidable, wr.Undecidable) {
					t.Errorf("%s:%d: undecidable %q, want it to hold %q", file, gr.Line, gr.Undecidable, wr.Undecidable)
				}
				wr, gr = &wr2, &gr2
			}
			if names {
				namesExact++
			}
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

func emptyTable(t *testing.T, file string, tb *topology.Table) {
	t.Helper()
	for _, c := range tb.Chains {
		if !builtin(tb.Name, c.Name) || c.Policy != "ACCEPT" || len(c.Rules) > 0 || c.Packets != 0 {
			t.Errorf("%s: table %s is not in iptables-save, but lists chain %+v", file, tb.Name, c)
		}
	}
}

// commentOf is a rule's first comment.
func commentOf(r *topology.Rule) string {
	if m := r.Match("comment"); m != nil {
		return m.Opt("comment").Arg()
	}
	return ""
}

// lostToRounding: -L without -x prints counters over 99999 rounded, which
// the reader does not keep (it reads 0).
func lostToRounding(file string, gp, gb, wp, wb uint64) bool {
	return filepath.Base(filepath.Dir(file)) == "L-nv" && gp == 0 && gb == 0 && (wp > 99999 || wb > 99999)
}

// TestIpvsadmListingsReadBack: every recorded ipvsadm-save -n, printed as
// `ipvsadm -Ln`, `-Ln --stats` and `-Ln --rate` with ipvsadm's format
// strings (record.sh: this kernel has no IPVS), reads back to the same
// services and real servers, with the scheduler, forward method and
// weight where the format shows them.
func TestIpvsadmListingsReadBack(t *testing.T) {
	root := filepath.Join("..", "..", "fixtures")
	dirs, _ := filepath.Glob(filepath.Join(root, "cmdout", "listings", "*", "*", "netns", "*", "ipvsadm"))
	more, _ := filepath.Glob(filepath.Join(root, "cmdout", "listings", "*", "*", "*", "netns", "*", "ipvsadm"))
	dirs = append(dirs, more...)
	if len(dirs) < 6 {
		t.Fatalf("%d ipvsadm listings", len(dirs))
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(filepath.Join(root, "cmdout", "listings"), dir)
		src := filepath.Join(root, rel+".txt")
		want := parseIPVSFile(t, src)
		for _, f := range []string{"ipvsadm-Ln.txt", "ipvsadm-Ln-stats.txt", "ipvsadm-Ln-rate.txt"} {
			got := parseIPVSFile(t, filepath.Join(dir, f))
			full := f == "ipvsadm-Ln.txt"
			if len(got.Services) != len(want.Services) {
				t.Errorf("%s/%s: %d services, want %d", dir, f, len(got.Services), len(want.Services))
				continue
			}
			for i, w := range want.Services {
				g := got.Services[i]
				if g.FWMark != w.FWMark || g.Proto != w.Proto || g.Addr != w.Addr || g.Port != w.Port || len(g.Dests) != len(w.Dests) ||
					full && (g.Scheduler != w.Scheduler || g.Persistent != w.Persistent) {
					t.Errorf("%s/%s: service %+v, want %+v", dir, f, g, w)
					continue
				}
				for j, wd := range w.Dests {
					gd := g.Dests[j]
					if gd.Addr != wd.Addr || gd.Port != wd.Port || full && (gd.Forward != wd.Forward || gd.Weight != wd.Weight) || !full && !gd.WeightUnknown {
						t.Errorf("%s/%s: real server %+v, want %+v", dir, f, gd, wd)
					}
				}
			}
		}
		// where the VM recorded the real `ipvsadm -Ln` too, the rendering
		// is the same but for the connection counts
		real := filepath.Join(filepath.Dir(src), "ipvsadm-Ln.txt")
		if b, err := os.ReadFile(real); err == nil {
			if a, b := conns0(readFixture(t, filepath.Join(dir, "ipvsadm-Ln.txt"))), conns0(string(b)); a != b {
				t.Errorf("%s: rendering differs from the real %s:\n%s\n%s", dir, real, a, b)
			}
		}
	}
}

// conns0 drops the connection counts of -Ln real server lines and
// collapses blanks.
func conns0(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		f := strings.Fields(l)
		if _, err := strconv.Atoi(f[len(f)-1]); err == nil && len(f) == 6 && f[0] == "->" {
			f = f[:4]
		}
		out = append(out, strings.Join(f, " "))
	}
	return strings.Join(out, "\n")
}
