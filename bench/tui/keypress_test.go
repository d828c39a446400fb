package tuibench

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui"
)

// The node benchmarked: 500 namespaces, 5,000 rules, 20 published ports
// (tcp/8080 balanced over all 497 tasks).
const (
	Namespaces = 500
	Rules      = 5000
	Ports      = 20
	// Budget is one frame at 60 Hz: a keypress must be drawn within it.
	Budget = 16 * time.Millisecond
)

func key(s string) tea.KeyPressMsg {
	special := map[string]rune{"down": tea.KeyDown, "right": tea.KeyRight, "enter": tea.KeyEnter}
	if c, ok := special[s]; ok {
		return tea.KeyPressMsg{Code: c}
	}
	return tea.KeyPressMsg{Code: rune(s[0]), Text: s}
}

func press(m tui.Model, keys ...string) tui.Model {
	for _, k := range keys {
		nm, _ := m.Update(key(k))
		m = nm.(tui.Model)
	}
	return m
}

// screens are the biggest screens of each tab, set up by keys, and the
// key that is then measured.
var screens = []struct {
	name  string
	setup []string
	key   string
}{
	// every namespace expanded: ~3,000 rows; the cursor moves.
	{"topology-expanded", []string{"e"}, "down"},
	// tcp/8080's path: 497 backend boxes; the selection moves.
	{"path-497-backends", []string{"2", "enter"}, "right"},
	// the IPVS box open: its 497 real servers listed.
	{"path-ipvs-detail", []string{"2", "enter", "right", "right", "right", "right"}, "enter"},
}

var sizes = [][2]int{{80, 24}, {160, 48}, {320, 96}}

func setup(tb testing.TB, m *topology.Model, w, h int, keys []string) tui.Model {
	return setupColour(tb, m, w, h, false, keys)
}

func setupColour(tb testing.TB, m *topology.Model, w, h int, colour bool, keys []string) tui.Model {
	tb.Helper()
	r := tui.New(tui.Config{Source: m.Source, Color: colour, Now: func() time.Time { return time.Unix(0, 0) }}).WithModel(m)
	nm, _ := r.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return press(nm.(tui.Model), keys...)
}

// BenchmarkKeypress is one key handled and the whole screen drawn.
func BenchmarkKeypress(b *testing.B) {
	m, err := Synth(Namespaces, Rules, Ports)
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range screens {
		for _, sz := range sizes {
			b.Run(fmt.Sprintf("%s/%dx%d", sc.name, sz[0], sz[1]), func(b *testing.B) {
				r := setup(b, m, sz[0], sz[1], sc.setup)
				b.ResetTimer()
				for range b.N {
					nm, _ := r.Update(key(sc.key))
					_ = nm.(tui.Model).View()
				}
			})
		}
	}
}

// BenchmarkBaselineInspectText is the same node printed whole by
// `meshtrace inspect` (the text renderer), measured in the same run.
func BenchmarkBaselineInspectText(b *testing.B) {
	m, err := Synth(Namespaces, Rules, Ports)
	if err != nil {
		b.Fatal(err)
	}
	rep := topology.NewReport(m)
	b.ResetTimer()
	for range b.N {
		_ = topology.WriteInspectText(io.Discard, rep)
	}
}

// TestKeypressBudget measures each screen like the benchmark and logs
// the median and worst of 200 keypresses against the 16 ms budget and
// against the inspect text baseline. It asserts nothing about time (the
// machine decides that); it checks that the screens are what is meant to
// be measured.
func TestKeypressBudget(t *testing.T) {
	m, err := Synth(Namespaces, Rules, Ports)
	if err != nil {
		t.Fatal(err)
	}
	base := measure(20, func() { _ = topology.WriteInspectText(io.Discard, topology.NewReport(m)) })
	t.Logf("node: %d namespaces, %d rules, %d ports; baseline `inspect` text of the whole node: median %v", Namespaces, Rules, Ports, base.med)
	for _, sc := range screens {
		for _, sz := range sizes {
			r := setup(t, m, sz[0], sz[1], sc.setup)
			if v := r.Screen(); len(v) < sz[0]*sz[1] {
				t.Fatalf("%s at %dx%d: the screen is not full:\n%s", sc.name, sz[0], sz[1], v)
			}
			d := measure(200, func() {
				nm, _ := r.Update(key(sc.key))
				_ = nm.(tui.Model).View()
			})
			t.Logf("%-18s %3dx%-3d median %8v  worst %8v  = %5.1f%% of 16 ms, %.2fx the baseline",
				sc.name, sz[0], sz[1], d.med, d.max, 100*float64(d.med)/float64(Budget), float64(d.med)/float64(base.med))
		}
	}
	for _, sc := range screens {
		r := setupColour(t, m, 320, 96, true, sc.setup)
		d := measure(200, func() {
			nm, _ := r.Update(key(sc.key))
			_ = nm.(tui.Model).View()
		})
		t.Logf("%-18s 320x96  median %8v  worst %8v  = %5.1f%% of 16 ms (colour theme)", sc.name, d.med, d.max, 100*float64(d.med)/float64(Budget))
	}
	for _, k := range []struct{ name, setup, key string }{{"expand all", "", "e"}, {"open tcp/8080", "2", "enter"}} {
		r := setup(t, m, 160, 48, []string{k.setup}[:len(k.setup)])
		d := measure(20, func() {
			nm, _ := r.Update(key(k.key))
			_ = nm.(tui.Model).View()
		})
		t.Logf("%-18s 160x48  median %8v  worst %8v  = %5.1f%% of 16 ms", k.name, d.med, d.max, 100*float64(d.med)/float64(Budget))
	}
}

type timing struct{ med, max time.Duration }

func measure(n int, f func()) timing {
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		f()
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return timing{ds[n/2], ds[n-1]}
}
