// Package topo is the topology component: the node's namespaces grouped by
// role with their Docker names; a namespace expands to its links,
// addresses, MTU, veth peers, bridge ports, VXLAN devices, FDB, firewall
// and load-balancer summary; one key jumps to a veth's peer.
package topo

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// Model is the topology list.
type Model struct {
	theme    ui.Theme
	w, h     int
	model    *topology.Model
	changes  delta.Set
	filter   string
	expanded map[string]bool
	rows     []row
	cursor   int
	offset   int
	back     []string // row keys to return to after jumps
	status   string   // one-line feedback (e.g. "peer not in this model")
}

// Option configures a Model.
type Option func(*Model)

// WithTheme sets the styles.
func WithTheme(t ui.Theme) Option { return func(m *Model) { m.theme = t } }

// New returns an empty topology list.
func New(opts ...Option) Model {
	m := Model{theme: ui.Plain(), expanded: map[string]bool{}, w: 80, h: 20}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// SetModel shows a new reading, keeping the cursor on the same row.
func (m Model) SetModel(tm *topology.Model, ch delta.Set) Model {
	m.model, m.changes = tm, ch
	return m.rebuild()
}

// SetSize sets the component's width and height in cells.
func (m Model) SetSize(w, h int) Model {
	m.w, m.h = max(w, 1), max(h, 1)
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.rows), m.h)
	return m
}

// SetFilter shows only namespaces whose names, Docker names, links or
// addresses contain f (case-insensitive).
func (m Model) SetFilter(f string) Model {
	m.filter = f
	return m.rebuild()
}

// Expand opens or closes a namespace.
func (m Model) Expand(name string, open bool) Model {
	m.expanded = cloneSet(m.expanded)
	m.expanded[name] = open
	return m.rebuild()
}

// Selected is the namespace under the cursor, or nil.
func (m Model) Selected() *topology.Namespace {
	if m.cursor < len(m.rows) {
		return m.rows[m.cursor].ns
	}
	return nil
}

// Status is a short message about the last action ("" when none).
func (m Model) Status() string { return m.status }

func (m Model) rebuild() Model {
	key := ""
	if m.cursor < len(m.rows) {
		key = m.rows[m.cursor].key
	}
	m.rows = buildRows(m.model, m.filter, m.expanded, m.changes)
	m.cursor = m.settle(m.find(key, m.cursor), 1)
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.rows), m.h)
	return m
}

// find returns the row with the key, else the row of the key's namespace,
// else fallback clamped.
func (m Model) find(key string, fallback int) int {
	if key != "" {
		ns, _, _ := strings.Cut(key, "/")
		alt := -1
		for i, r := range m.rows {
			if r.key == key {
				return i
			}
			if r.kind == rowNS && r.key == ns && alt < 0 {
				alt = i
			}
		}
		if alt >= 0 {
			return alt
		}
	}
	return ui.Clamp(fallback, 0, max(0, len(m.rows)-1))
}

func (m Model) has(key string) bool {
	for _, r := range m.rows {
		if r.key == key {
			return true
		}
	}
	return false
}

// KeyMap is the topology's keys.
type KeyMap struct {
	Up, Down, PageUp, PageDown, First, Last key.Binding
	Open, Expand, Collapse, Peer, Back, All key.Binding
}

// Keys are the topology's keys (its help lists them).
var Keys = KeyMap{
	Up:       ui.Key("move up", "up", "k"),
	Down:     ui.Key("move down", "down", "j"),
	PageUp:   ui.Key("a page up", "pgup"),
	PageDown: ui.Key("a page down", "pgdown"),
	First:    ui.Key("first", "home", "g"),
	Last:     ui.Key("last", "end", "G"),
	Open:     ui.Key("expand / collapse a namespace; on a veth, jump to its peer", "enter", "space"),
	Expand:   ui.Key("expand", "right", "l"),
	Collapse: ui.Key("collapse", "left", "h"),
	Peer:     ui.Key("jump to the veth's peer", "p"),
	Back:     ui.Key("back to where you jumped from", "b", "backspace"),
	All:      ui.Key("expand or collapse all", "e"),
}

// Bindings lists the keys in the order the help shows them.
func (k KeyMap) Bindings() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.First, k.Last, k.Open, k.Expand, k.Collapse, k.Peer, k.Back, k.All}
}

// Update handles keys.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || len(m.rows) == 0 {
		return m, nil
	}
	m.status = ""
	dir := 1
	switch {
	case key.Matches(k, Keys.Up):
		m.cursor, dir = m.cursor-1, -1
	case key.Matches(k, Keys.Down):
		m.cursor++
	case key.Matches(k, Keys.PageUp):
		m.cursor, dir = m.cursor-m.h, -1
	case key.Matches(k, Keys.PageDown):
		m.cursor += m.h
	case key.Matches(k, Keys.First):
		m.cursor = 0
	case key.Matches(k, Keys.Last):
		m.cursor, dir = len(m.rows)-1, -1
	case key.Matches(k, Keys.Open, Keys.Expand):
		return m.activate(key.Matches(k, Keys.Expand)), nil
	case key.Matches(k, Keys.Collapse):
		if ns := m.Selected(); ns != nil {
			m = m.Expand(ns.Name, false)
			m.cursor = m.find(ns.Name, m.cursor)
		}
	case key.Matches(k, Keys.Peer):
		return m.jumpPeer(), nil
	case key.Matches(k, Keys.Back):
		if n := len(m.back); n > 0 {
			key := m.back[n-1]
			m.back = m.back[:n-1]
			ns, _, _ := strings.Cut(key, "/")
			m = m.Expand(ns, true)
			m.cursor = m.find(key, m.cursor)
		}
	case key.Matches(k, Keys.All):
		m = m.toggleAll()
	}
	m.cursor = m.settle(m.cursor, dir)
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.rows), m.h)
	return m, nil
}

// settle clamps i and moves it off group headers, in direction dir first.
func (m Model) settle(i, dir int) int {
	if len(m.rows) == 0 {
		return 0
	}
	i = ui.Clamp(i, 0, len(m.rows)-1)
	for _, d := range []int{dir, -dir} {
		for j := i; j >= 0 && j < len(m.rows); j += d {
			if m.rows[j].kind != rowGroup {
				return j
			}
		}
	}
	return i
}

// activate expands/collapses a namespace row or follows a link's peer.
func (m Model) activate(onlyOpen bool) Model {
	r := m.rows[m.cursor]
	switch r.kind {
	case rowNS:
		if onlyOpen && m.expanded[r.ns.Name] {
			return m
		}
		return m.Expand(r.ns.Name, !m.expanded[r.ns.Name])
	case rowLink:
		if !onlyOpen {
			return m.jumpPeer()
		}
	}
	return m
}

func (m Model) toggleAll() Model {
	open := false
	for _, ns := range m.model.Namespaces {
		if !m.expanded[ns.Name] {
			open = true
			break
		}
	}
	m.expanded = map[string]bool{}
	if open {
		for _, ns := range m.model.Namespaces {
			m.expanded[ns.Name] = true
		}
	}
	return m.rebuild()
}

// jumpPeer moves to the other end of the selected veth (on a namespace
// row: of its first link that has a resolved peer).
func (m Model) jumpPeer() Model {
	r := m.rows[m.cursor]
	l := r.link
	if r.kind == rowNS {
		for _, c := range r.ns.Links {
			if c.Peer != nil && c.Peer.Netns != "" {
				l = c
				break
			}
		}
	}
	if l == nil || l.Peer == nil {
		m.status = "no veth peer here"
		return m
	}
	target := l.Peer.Netns
	if target == "" && l.Peer.NetnsID < 0 {
		target = r.ns.Name
	}
	if target == "" || m.model.Lookup(target) == nil {
		m.status = "peer is not in this model"
		return m
	}
	m.back = append(m.back, r.key)
	m = m.Expand(target, true)
	if m.filter != "" && !m.has(target) {
		m = m.SetFilter("")
	}
	key := target + "/" + l.Peer.Ifname
	m.cursor = m.settle(m.find(key, m.cursor), 1)
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.rows), m.h)
	m.status = "jumped to " + key + " (b: back)"
	return m
}

// View draws the visible rows.
func (m Model) View() string {
	if m.model == nil {
		return ui.Block([]string{"  reading the model…"}, m.w, m.h)
	}
	lines := make([]string, 0, m.h)
	end := min(len(m.rows), m.offset+m.h)
	for i := m.offset; i < end; i++ {
		lines = append(lines, m.line(m.rows[i], i == m.cursor))
	}
	if len(m.rows) == 0 {
		lines = append(lines, "  no namespace matches the filter "+m.filter)
	}
	return ui.Block(lines, m.w, m.h)
}

func cloneSet(s map[string]bool) map[string]bool {
	c := make(map[string]bool, len(s)+1)
	for k, v := range s {
		c[k] = v
	}
	return c
}
