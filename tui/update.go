package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/tui/help"
	"github.com/meshtrace/meshtrace/tui/pathview"
	"github.com/meshtrace/meshtrace/tui/ports"
	"github.com/meshtrace/meshtrace/tui/traceview"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// Update routes messages: results of background work to the root, keys
// to the overlay, the filter or the screen shown.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		return m.resize(), nil
	case loadedMsg:
		return m.onLoaded(msg)
	case refreshMsg:
		return m.refresh()
	case traceMsg:
		return m.onTrace(msg)
	case ports.OpenMsg:
		return m.open(msg.Entry)
	case pathview.BackMsg:
		m.pathOpen = false
		return m, nil
	case pathview.NextClientMsg:
		return m.nextClient()
	case pathview.TraceMsg:
		return m.startTrace(msg.Probe)
	case pathview.StopMsg:
		return m.stopTrace(), nil
	case traceview.SelectMsg:
		m.marked = msg.Conn.ID
		return m.markPath(), nil
	case help.CloseMsg:
		m.showHelp = false
		return m, nil
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	// anything else (playback ticks) goes to the replay view.
	var cmd tea.Cmd
	m.replay, cmd = m.replay.Update(msg)
	return m, cmd
}

// KeyMap is the keys that work on every screen, and the trace screen's
// own.
type KeyMap struct {
	Quit, Interrupt, Help, Filter, Tabs, NextTab, PrevTab, Refresh key.Binding
	// StopTrace is the trace screen's (the path view has its own).
	StopTrace key.Binding
}

// Keys are the root's keys (the help lists them).
var Keys = KeyMap{
	Quit:      ui.Key("quit", "q"),
	Interrupt: ui.Key("quit, also in the help and the filter", "ctrl+c"),
	Help:      ui.Key("this help", "?"),
	Filter:    ui.Key("filter (enter keeps, esc clears)", "/"),
	Tabs:      ui.Key("topology, paths, trace, replay", "1", "2", "3", "4"),
	NextTab:   ui.Key("next screen", "tab"),
	PrevTab:   ui.Key("previous screen", "shift+tab"),
	Refresh:   ui.Key("re-read the model now", "r"),
	StopTrace: ui.Key("stop the trace", "s"),
}

// Bindings lists the global keys in the order the help shows them.
func (k KeyMap) Bindings() []key.Binding {
	return []key.Binding{k.Tabs, k.NextTab, k.PrevTab, k.Filter, k.Refresh, k.Help, k.Quit, k.Interrupt}
}

func (m Model) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	if key.Matches(k, Keys.Interrupt) {
		return m.quit()
	}
	if m.showHelp {
		var cmd tea.Cmd
		m.help, cmd = m.help.Update(k)
		return m, cmd
	}
	if m.filtering {
		return m.filterKey(k), nil
	}
	m.status = ""
	switch {
	case key.Matches(k, Keys.Quit):
		return m.quit()
	case key.Matches(k, Keys.Help):
		m.showHelp = true
		m.help = m.help.SetSections(m.helpSections())
		return m, nil
	case key.Matches(k, Keys.Filter):
		m.filtering = true
		return m, nil
	case key.Matches(k, Keys.Tabs):
		m.tab = Tab(k.String()[0] - '1')
		return m, nil
	case key.Matches(k, Keys.NextTab):
		m.tab = (m.tab + 1) % 4
		return m, nil
	case key.Matches(k, Keys.PrevTab):
		m.tab = (m.tab + 3) % 4
		return m, nil
	case key.Matches(k, Keys.Refresh):
		if m.cfg.Load != nil {
			m.status = "refreshing…"
		}
		return m.refresh()
	}
	return m.toScreen(k)
}

// toScreen passes a key to the component shown. The commands of the
// topology, list, path and trace components only carry what the user
// asked for (open this path, start a trace); they are applied at once, so
// the keys that follow act on their result.
func (m Model) toScreen(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch m.tab {
	case TabTopology:
		if m.pub.Handles(k) {
			m.pub, cmd = m.pub.Update(k)
			if cmd == nil && m.pub.Len() == 0 {
				m.status = "no port published on this node"
			}
			break
		}
		m.topo, cmd = m.topo.Update(k)
		m.status = m.topo.Status()
	case TabPaths:
		if m.pathOpen {
			m.path, cmd = m.path.Update(k)
		} else {
			m.ports, cmd = m.ports.Update(k)
		}
	case TabTrace:
		if key.Matches(k, Keys.StopTrace) {
			return m.stopTrace(), nil
		}
		m.trace, cmd = m.trace.Update(k)
	case TabReplay:
		m.replay, cmd = m.replay.Update(k)
		return m, cmd // playback ticks take time: run by the program
	}
	if cmd != nil {
		return m.Update(cmd())
	}
	return m, nil
}

// filterKey edits the filter: text appends, backspace deletes, enter
// keeps it, esc clears it.
func (m Model) filterKey(k tea.KeyPressMsg) Model {
	switch k.String() {
	case "enter":
		m.filtering = false
		return m
	case "esc":
		m.filtering, m.filter = false, ""
	case "backspace":
		if r := []rune(m.filter); len(r) > 0 {
			m.filter = string(r[:len(r)-1])
		}
	default:
		if k.Text == "" {
			return m
		}
		m.filter += k.Text
	}
	m.topo = m.topo.SetFilter(m.filter)
	m.ports = m.ports.SetFilter(m.filter)
	m.trace = m.trace.SetFilter(m.filter)
	return m
}

func (m Model) quit() (tea.Model, tea.Cmd) {
	if m.traceCancel != nil {
		m.traceCancel()
		m.traceCancel = nil
	}
	return m, tea.Quit
}

// open shows an entry's path. The path is evaluated here, on the UI
// goroutine: it takes a few milliseconds even on a node with 500
// namespaces and 5,000 rules (bench/tui), and the drawing is then never
// out of step with the keys that follow.
func (m Model) open(e ports.Entry) (tea.Model, tea.Cmd) {
	m.entry = &e
	m.pathOpen = true
	m.tab = TabPaths
	if m.model == nil {
		return m, nil
	}
	p, err := findPath(m.model, e.Query)
	m.path = m.path.SetPath(m.model, p, err, m.changes)
	return m.markPath(), nil
}

// nextClient starts the east-west path from the next task.
func (m Model) nextClient() (tea.Model, tea.Cmd) {
	if m.entry == nil || len(m.entry.Clients) < 2 {
		m.status = "no other task on this VIP's network"
		return m, nil
	}
	e := *m.entry
	i := 0
	for j, c := range e.Clients {
		if c == e.Query.Netns {
			i = j
		}
	}
	e.Query.Netns = e.Clients[(i+1)%len(e.Clients)]
	return m.open(e)
}
