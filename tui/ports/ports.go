// Package ports is the list of what has a path: the node's published ports
// and its service VIPs (east-west). Enter asks for the entry's path.
package ports

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/tui/ui"
)

// OpenMsg asks the root to draw an entry's path.
type OpenMsg struct{ Entry Entry }

// Model is the list.
type Model struct {
	theme   ui.Theme
	w, h    int
	all     []Entry
	shown   []int // indexes into all that match the filter
	filter  string
	cursor  int
	offset  int
	loading bool
}

// Option configures a Model.
type Option func(*Model)

// WithTheme sets the styles.
func WithTheme(t ui.Theme) Option { return func(m *Model) { m.theme = t } }

// New returns an empty list (shown as loading until SetEntries).
func New(opts ...Option) Model {
	m := Model{theme: ui.Plain(), w: 80, h: 20, loading: true}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// SetEntries replaces the list, keeping the cursor on the same entry.
func (m Model) SetEntries(es []Entry) Model {
	var cur string
	if e, ok := m.Selected(); ok {
		cur = e.Title()
	}
	m.all, m.loading = es, false
	m = m.apply()
	for i, idx := range m.shown {
		if m.all[idx].Title() == cur {
			m.cursor = i
		}
	}
	return m
}

// SetFilter shows entries whose title, service or backends contain f.
func (m Model) SetFilter(f string) Model {
	m.filter = f
	return m.apply()
}

// SetSize sets the component's size.
func (m Model) SetSize(w, h int) Model {
	m.w, m.h = max(w, 1), max(h, 1)
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.shown), m.listHeight())
	return m
}

// Selected is the entry under the cursor.
func (m Model) Selected() (Entry, bool) {
	if m.cursor < len(m.shown) {
		return m.all[m.shown[m.cursor]], true
	}
	return Entry{}, false
}

// Entries is the whole list.
func (m Model) Entries() []Entry { return m.all }

func (m Model) apply() Model {
	m.shown = m.shown[:0:0]
	f := strings.ToLower(m.filter)
	for i, e := range m.all {
		text := strings.ToLower(e.Title() + " " + e.Service + " " + e.From() + " " + joinAddrs(e.Backends, " "))
		if f == "" || strings.Contains(text, f) {
			m.shown = append(m.shown, i)
		}
	}
	m.cursor = ui.Clamp(m.cursor, 0, max(0, len(m.shown)-1))
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.shown), m.listHeight())
	return m
}

func (m Model) listHeight() int { return max(1, m.h-2) }

// KeyMap is the list's keys.
type KeyMap struct {
	Up, Down, First, Last, PageUp, PageDown, Open key.Binding
}

// Keys are the list's keys (its help lists them).
var Keys = KeyMap{
	Up:       ui.Key("move up", "up", "k"),
	Down:     ui.Key("move down", "down", "j"),
	First:    ui.Key("first", "home", "g"),
	Last:     ui.Key("last", "end", "G"),
	PageUp:   ui.Key("a page up", "pgup"),
	PageDown: ui.Key("a page down", "pgdown"),
	Open:     ui.Key("draw the published port's or VIP's path", "enter", "right", "l"),
}

// Bindings lists the keys in the order the help shows them.
func (k KeyMap) Bindings() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.First, k.Last, k.PageUp, k.PageDown, k.Open}
}

// Update handles keys; enter opens the selected entry's path.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return m, nil
	}
	switch {
	case key.Matches(k, Keys.Up):
		m.cursor--
	case key.Matches(k, Keys.Down):
		m.cursor++
	case key.Matches(k, Keys.First):
		m.cursor = 0
	case key.Matches(k, Keys.Last):
		m.cursor = len(m.shown) - 1
	case key.Matches(k, Keys.PageUp):
		m.cursor -= m.listHeight()
	case key.Matches(k, Keys.PageDown):
		m.cursor += m.listHeight()
	case key.Matches(k, Keys.Open):
		if e, ok := m.Selected(); ok {
			return m, func() tea.Msg { return OpenMsg{Entry: e} }
		}
	}
	m.cursor = ui.Clamp(m.cursor, 0, max(0, len(m.shown)-1))
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.shown), m.listHeight())
	return m, nil
}

// View draws the list: published ports, then VIPs.
func (m Model) View() string {
	lines := []string{m.theme.Header.Render(ui.Fit("  PATHS  published ports and service VIPs", m.w))}
	switch {
	case m.loading:
		lines = append(lines, "  reading the model…")
	case len(m.all) == 0:
		lines = append(lines, "  nothing published on this node and no service VIP found")
	case len(m.shown) == 0:
		lines = append(lines, "  nothing matches the filter "+m.filter)
	}
	end := min(len(m.shown), m.offset+m.listHeight())
	for i := m.offset; i < end; i++ {
		lines = append(lines, m.line(m.all[m.shown[i]], i == m.cursor))
	}
	return ui.Block(lines, m.w, m.h)
}

func (m Model) line(e Entry, sel bool) string {
	cur := "  "
	if sel {
		cur = ui.MarkCursor + " "
	}
	state := e.state()
	what := e.Title()
	if e.VIP() {
		what += " from " + ui.Short(e.From(), 12)
	}
	lb := "-"
	if e.FWMark != 0 {
		lb = fmt.Sprintf("FWM %d", e.FWMark)
	}
	svc := orDash(e.Service)
	var s string
	if m.w < 60 {
		s = fmt.Sprintf("%s%-18s %s", cur, what, state)
	} else {
		s = fmt.Sprintf("%s%-30s %-10s %-9s %d backends  %s", cur, ui.Trunc(what, 30), ui.Trunc(svc, 10), lb, len(e.Backends), state)
	}
	if m.w >= 120 && len(e.Backends) > 0 {
		s += "  " + joinAddrs(e.Backends, ", ")
	}
	s = ui.Fit(s, m.w)
	switch {
	case sel:
		return m.theme.Cursor.Render(s)
	case !e.Complete && !e.Unknown:
		return m.theme.Bad.Render(s)
	}
	return s
}
