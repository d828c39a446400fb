// Package pathview draws a path the way people draw it on a whiteboard:
// a chain of boxes (client → host DNAT → docker_gwbridge → ingress_sbox
// MARK → IPVS → SNAT) fanning out to each backend task or remote node.
// Any box opens to the exact rule with its counters, or the IPVS entry.
// A live trace's position is marked on the boxes.
package pathview

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// Messages the path view asks the root for.
type (
	// TraceMsg starts a live trace of the path's port (Probe: make the
	// traffic too).
	TraceMsg struct{ Probe bool }
	// StopMsg stops the live trace.
	StopMsg struct{}
	// NextClientMsg asks for the east-west path from the next client.
	NextClientMsg struct{}
	// BackMsg leaves the path view.
	BackMsg struct{}
)

// Marks are where a traced connection was seen, shown on the boxes.
type Marks struct {
	// Seen holds namespaces ("ingress_sbox") and capture points
	// ("host/docker_gwbridge") where the packet was seen.
	Seen map[string]bool
	// Lost is the namespace where the packet disappeared.
	Lost string
	// Reached is the backend address that answered.
	Reached string
	// Status is the trace's one-line state.
	Status string
}

// Model is the path view.
type Model struct {
	theme    ui.Theme
	w, h     int
	model    *topology.Model
	path     *topology.Path
	err      error
	title    string
	changes  delta.Set
	chain    []box
	backends []box
	sel      int
	detailOn bool
	marks    Marks
	geo      geometry
}

// Option configures a Model.
type Option func(*Model)

// WithTheme sets the styles.
func WithTheme(t ui.Theme) Option { return func(m *Model) { m.theme = t } }

// New returns an empty path view.
func New(opts ...Option) Model {
	m := Model{theme: ui.Plain(), w: 80, h: 20, detailOn: true}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// SetPath shows a path (or the error finding it) from a reading of the
// model; the selection stays on the same box when it still exists.
func (m Model) SetPath(tm *topology.Model, p *topology.Path, err error, ch delta.Set) Model {
	keep := m.sel
	samePath := m.path != nil && p != nil && m.path.Port == p.Port && m.path.VIP == p.VIP && m.path.From == p.From
	m.model, m.path, m.err, m.changes = tm, p, err, ch
	m.chain, m.backends = nil, nil
	if p != nil && tm != nil {
		m.chain, m.backends = build(tm, p, ch)
	}
	if !samePath {
		keep = 0
	}
	m.sel = ui.Clamp(keep, 0, max(0, len(m.chain)+len(m.backends)-1))
	return m.relayout()
}

// SetMarks shows a traced connection's position.
func (m Model) SetMarks(mk Marks) Model { m.marks = mk; return m.relayout() }

// SetSize sets the component's size.
func (m Model) SetSize(w, h int) Model { m.w, m.h = max(w, 1), max(h, 1); return m.relayout() }

// Path is the path shown, nil when none.
func (m Model) Path() *topology.Path { return m.path }

func (m Model) boxes() int { return len(m.chain) + len(m.backends) }

func (m Model) box(i int) box {
	if i < len(m.chain) {
		return m.chain[i]
	}
	return m.backends[i-len(m.chain)]
}

// KeyMap is the path view's keys.
type KeyMap struct {
	Next, Prev, First, Last, Detail, Back, Probe, Watch, Stop, NextClient key.Binding
}

// Keys are the path view's keys (its help lists them).
var Keys = KeyMap{
	Next:       ui.Key("next box", "right", "l", "down", "j"),
	Prev:       ui.Key("previous box", "left", "h", "up", "k"),
	First:      ui.Key("first box", "home", "g"),
	Last:       ui.Key("last box", "end", "G"),
	Detail:     ui.Key("show or hide the box's rule, counters, IPVS entry", "enter", "space"),
	Back:       ui.Key("back to the list", "esc", "backspace"),
	Probe:      ui.Key("live trace with a probe (makes connections)", "p"),
	Watch:      ui.Key("live trace of real traffic", "t"),
	Stop:       ui.Key("stop the trace", "s"),
	NextClient: ui.Key("VIP path: start from another task", "c"),
}

// Bindings lists the keys in the order the help shows them.
func (k KeyMap) Bindings() []key.Binding {
	return []key.Binding{k.Next, k.Prev, k.First, k.Last, k.Detail, k.Back, k.Probe, k.Watch, k.Stop, k.NextClient}
}

// Update handles keys.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return m, nil
	}
	send := func(v tea.Msg) tea.Cmd { return func() tea.Msg { return v } }
	switch {
	case key.Matches(k, Keys.Next):
		m.sel = min(m.sel+1, max(0, m.boxes()-1))
	case key.Matches(k, Keys.Prev):
		m.sel = max(m.sel-1, 0)
	case key.Matches(k, Keys.First):
		m.sel = 0
	case key.Matches(k, Keys.Last):
		m.sel = max(0, m.boxes()-1)
	case key.Matches(k, Keys.Detail):
		m.detailOn = !m.detailOn
	case key.Matches(k, Keys.Back):
		return m, send(BackMsg{})
	case key.Matches(k, Keys.Watch):
		return m, send(TraceMsg{})
	case key.Matches(k, Keys.Probe):
		return m, send(TraceMsg{Probe: true})
	case key.Matches(k, Keys.Stop):
		return m, send(StopMsg{})
	case key.Matches(k, Keys.NextClient):
		if m.path != nil && m.path.VIP.IsValid() {
			return m, send(NextClientMsg{})
		}
	}
	return m, nil
}

// View draws the header, the chain, the backends and the selected box's
// detail.
func (m Model) View() string {
	if m.path == nil {
		msg := "  select a published port or VIP (enter) to draw its path"
		if m.err != nil {
			msg = "  " + ui.MarkLost + " " + m.err.Error()
		}
		return ui.Block([]string{msg}, m.w, m.h)
	}
	head := m.header()
	var foot []string
	if m.marks.Status != "" {
		foot = append(foot, ui.Fit(" "+m.marks.Status, m.w))
	}
	avail := max(0, m.h-len(head)-len(foot))
	var det []string
	if m.detailOn && m.boxes() > 0 {
		det = m.detailLines(avail)
	}
	_, total := m.body(0, 0)
	// the drawing gets what it needs, the detail at least a third
	detMin := min(len(det), max(3, avail/3))
	bodyH := max(0, min(total, avail-detMin))
	off := 0
	if sl := m.selLine(); sl+4 > bodyH {
		off = min(sl+4-bodyH, max(0, total-bodyH))
	}
	body, _ := m.body(off, bodyH)
	lines := append([]string{}, head...)
	lines = append(lines, body...)
	lines = append(lines, det[:min(len(det), max(0, avail-len(body)))]...)
	for len(lines) < m.h-len(foot) {
		lines = append(lines, "")
	}
	lines = append(lines, foot...)
	return ui.Block(lines, m.w, m.h)
}

// detailLines is the selected box's detail, wrapped, at most max lines.
func (m Model) detailLines(limit int) []string {
	out := []string{m.theme.Header.Render(ui.Fit(" ── "+m.box(m.sel).title+" ", m.w))}
	for _, l := range m.detail(m.box(m.sel), limit) {
		for _, w := range ui.Wrap(l, m.w-2) {
			out = append(out, " "+w)
		}
		if len(out) >= limit {
			break
		}
	}
	return out
}

func (m Model) header() []string {
	p := m.path
	what := fmt.Sprintf("%s/%d published", p.Proto, p.Port)
	if p.VIP.IsValid() {
		what = fmt.Sprintf("%s VIP %s:%d from %s", p.Proto, p.VIP, portOr80(p.Port), nsLabel(m.model, p.From))
	}
	state := ui.MarkOK + " complete"
	st := m.theme.Good
	switch {
	case p.Verdict == topology.VerdictUnknown:
		state, st = "? UNKNOWN (not collected)", m.theme.Dim
		hops := p.Hops
		for _, b := range p.Backends {
			hops = append(hops[:len(hops):len(hops)], b.Hops...)
		}
		for _, h := range hops {
			if h.Kind == topology.HopUnknown {
				state = "? UNKNOWN past " + h.Netns + " (not collected)"
				break
			}
		}
	case !p.Complete:
		state, st = ui.MarkLost+" BROKEN", m.theme.Bad
		for _, h := range p.Hops {
			if h.Kind == topology.HopBreak {
				state += " at " + h.Netns
			}
		}
	}
	s := fmt.Sprintf(" %s · %s · %s", what, st.Render(state), ui.Count(len(p.Backends), "backend"))
	return []string{ui.Fit(strings.TrimRight(s, " "), m.w)}
}

// mark is what the trace marks say about one box.
type mark int

const (
	markNone mark = iota
	markSeen
	markReached
	markLost
)

// marksAll reads the trace marks for every box: the first box of the
// namespace where the packet disappeared is "lost", and nothing after it
// counts as seen; the backend that answered is "reached".
func (m Model) marksAll() []mark {
	n := m.boxes()
	out := make([]mark, n)
	mk := m.marks
	if mk.Seen == nil && mk.Lost == "" && mk.Reached == "" {
		return out
	}
	lost := n
	for i := 0; i < n && mk.Lost != ""; i++ {
		if b := m.box(i); b.kind != kindCross && b.netns == mk.Lost {
			lost = i
			out[i] = markLost
			break
		}
	}
	for i := 0; i < lost; i++ {
		out[i] = m.markOf(m.box(i))
	}
	return out
}

func (m Model) markOf(b box) mark {
	mk := m.marks
	if b.kind == kindBackend && mk.Reached != "" && b.be.IP.String() == mk.Reached {
		return markReached
	}
	for _, p := range b.points {
		if mk.Seen[p] {
			return markSeen
		}
	}
	if b.kind != kindCross && b.kind != kindBackend && b.netns != "" && mk.Seen[b.netns] {
		return markSeen
	}
	return markNone
}
