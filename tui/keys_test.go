package tui

import (
	"slices"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/help"
	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
	"github.com/meshtrace/meshtrace/tui/pathview"
	"github.com/meshtrace/meshtrace/tui/ports"
	"github.com/meshtrace/meshtrace/tui/replay"
	"github.com/meshtrace/meshtrace/tui/topo"
	"github.com/meshtrace/meshtrace/tui/traceview"
)

// candidates are the keys tried: every printable ASCII key and the named
// ones.
func candidates() []string {
	out := []string{"up", "down", "left", "right", "enter", "esc", "tab", "space", "backspace", "pgdown", "pgup", "home", "end"}
	for c := '!'; c <= '~'; c++ {
		out = append(out, string(c))
	}
	return out
}

// listed are the keys the help names in sections (its labels, the
// arrows spelled back).
func listed(sections []help.Section) []string {
	names := map[string]string{"↑": "up", "↓": "down", "←": "left", "→": "right", "pgdn": "pgdown"}
	var out []string
	for _, s := range sections {
		for _, k := range s.Keys {
			for _, f := range strings.Fields(k[0]) {
				if n, ok := names[f]; ok {
					f = n
				}
				out = append(out, f)
			}
		}
	}
	return out
}

// component is one screen's component in a state where its keys act:
// update applies a key and returns what it draws and its command.
type component struct {
	name   string
	tab    Tab
	update func(k tea.Msg) (string, tea.Cmd)
	view   string
}

// TestHelpListsTheHandledKeys: every key a screen's component acts on is
// in the help of that screen (the keys are data, the help is made from
// them; pathview handled g/G/h/j/k/l while the help listed only arrows),
// and the help lists no key twice.
func TestHelpListsTheHandledKeys(t *testing.T) {
	tm := tuitest.Bundle(t, "modern")
	p, err := topology.FindPath(tm, topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	var cs []component
	{
		m := topo.New().SetModel(tm, delta.Set{}).SetSize(100, 30)
		for _, k := range tuitest.Keys("down", "down") {
			m, _ = m.Update(k)
		}
		cs = append(cs, component{"topology", TabTopology, func(k tea.Msg) (string, tea.Cmd) {
			n, cmd := m.Update(k)
			return n.View() + n.Status(), cmd
		}, m.View() + m.Status()})
	}
	{
		m := ports.New().SetEntries(ports.Build(tm)).SetSize(100, 30)
		m, _ = m.Update(tuitest.Keys("down")[0])
		cs = append(cs, component{"ports", TabPaths, func(k tea.Msg) (string, tea.Cmd) {
			n, cmd := m.Update(k)
			return n.View(), cmd
		}, m.View()})
	}
	{
		m := pathview.New().SetPath(tm, p, nil, delta.Set{}).SetSize(120, 40)
		m, _ = m.Update(tuitest.Keys("right")[0])
		cs = append(cs, component{"path", TabPaths, func(k tea.Msg) (string, tea.Cmd) {
			n, cmd := m.Update(k)
			return n.View(), cmd
		}, m.View()})
	}
	{
		m := traceview.New().SetSize(100, 30).SetConns(append(tuitest.Conns(), tuitest.Conns()...), 10)
		m, _ = m.Update(tuitest.Keys("up")[0])
		cs = append(cs, component{"trace", TabTrace, func(k tea.Msg) (string, tea.Cmd) {
			n, cmd := m.Update(k)
			return n.View(), cmd
		}, m.View()})
	}
	{
		m := replay.New().SetSize(100, 30).SetConns("x", tuitest.Conns(), "", nil)
		for _, k := range tuitest.Keys("]", "right") {
			m, _ = m.Update(k)
		}
		cs = append(cs, component{"replay", TabReplay, func(k tea.Msg) (string, tea.Cmd) {
			n, cmd := m.Update(k)
			return n.View(), cmd
		}, m.View()})
	}
	root := New(Config{})
	for _, c := range cs {
		root.tab = c.tab
		secs := root.helpSections()
		keys := listed(secs)
		for _, name := range candidates() {
			view, cmd := c.update(tuitest.Keys(name)[0])
			if (view != c.view || cmd != nil) && !slices.Contains(keys, name) {
				t.Errorf("%s acts on %q, which its help does not list", c.name, name)
			}
		}
		for _, s := range secs[:len(secs)-1] { // the marks are no keys
			var seen []string
			for _, k := range listed([]help.Section{s}) {
				if slices.Contains(seen, k) {
					t.Errorf("%s: help section %q lists %q twice", c.name, s.Title, k)
				}
				seen = append(seen, k)
			}
		}
	}
	root.tab = TabPaths
	keys := listed(root.helpSections())
	for _, k := range []string{"g", "G", "h", "j", "k", "l"} {
		if !slices.Contains(keys, k) {
			t.Errorf("the paths help does not list %q", k)
		}
	}
}

// TestHelpOverlayKeys: the overlay acts only on the keys it lists.
func TestHelpOverlayKeys(t *testing.T) {
	secs := []help.Section{help.FromKeys("a", topo.Keys.Bindings()...), help.FromKeys("b", replay.Keys.Bindings()...)}
	m := help.New(secs).SetSize(60, 6)
	m, _ = m.Update(tuitest.Keys("down")[0])
	keys := listed([]help.Section{help.FromKeys("overlay", help.Keys.Bindings()...)})
	for _, name := range candidates() {
		n, cmd := m.Update(tuitest.Keys(name)[0])
		if (n.View() != m.View() || cmd != nil) && !slices.Contains(keys, name) {
			t.Errorf("the help overlay acts on %q, which it does not list", name)
		}
	}
}
