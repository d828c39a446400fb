// Package traceview lists the connections of a live trace as they are
// seen, and shows the selected one hop by hop: the tuple at every capture
// point, each rewrite and what explains it, and where a lost packet
// disappeared.
package traceview

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/tui/flows"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// SelectMsg says which connection is selected (the root marks its
// position on the path).
type SelectMsg struct{ Conn flows.Conn }

// State is where the trace is.
type State int

// States of a trace.
const (
	Idle State = iota
	Running
	Done
	Failed
)

// Model is the trace view.
type Model struct {
	theme  ui.Theme
	w, h   int
	title  string
	state  State
	note   string
	conns  []flows.Conn
	shown  []int
	filter string
	cursor int
	offset int
	follow bool // the cursor follows the newest connection
	frames int
}

// Option configures a Model.
type Option func(*Model)

// WithTheme sets the styles.
func WithTheme(t ui.Theme) Option { return func(m *Model) { m.theme = t } }

// New returns an idle trace view.
func New(opts ...Option) Model {
	m := Model{theme: ui.Plain(), w: 80, h: 20, follow: true}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// SetState sets the trace's state, its title ("tcp/8080 with probe") and
// a note (an error or why it stopped).
func (m Model) SetState(s State, title, note string) Model {
	m.state, m.title, m.note = s, title, note
	return m
}

// State is the trace's state.
func (m Model) State() State { return m.state }

// SetConns replaces the connections; the cursor stays on the same
// connection, or follows the newest until the user moves it.
func (m Model) SetConns(cs []flows.Conn, frames int) Model {
	id := -1
	if c, ok := m.Selected(); ok {
		id = c.ID
	}
	m.conns, m.frames = cs, frames
	m = m.apply()
	for i, idx := range m.shown {
		if m.conns[idx].ID == id && !m.follow {
			m.cursor = i
		}
	}
	if m.follow {
		m.cursor = max(0, len(m.shown)-1)
	}
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.shown), m.listH())
	return m
}

// SetFilter shows connections whose addresses, task or stop contain f.
func (m Model) SetFilter(f string) Model {
	m.filter = f
	return m.apply()
}

// SetSize sets the component's size.
func (m Model) SetSize(w, h int) Model {
	m.w, m.h = max(w, 1), max(h, 1)
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.shown), m.listH())
	return m
}

// Selected is the connection under the cursor.
func (m Model) Selected() (flows.Conn, bool) {
	if m.cursor < len(m.shown) {
		return m.conns[m.shown[m.cursor]], true
	}
	return flows.Conn{}, false
}

func (m Model) apply() Model {
	m.shown = m.shown[:0:0]
	f := strings.ToLower(m.filter)
	for i, c := range m.conns {
		if f == "" || strings.Contains(strings.ToLower(searchText(c)), f) {
			m.shown = append(m.shown, i)
		}
	}
	m.cursor = ui.Clamp(m.cursor, 0, max(0, len(m.shown)-1))
	return m
}

func searchText(c flows.Conn) string {
	s := fmt.Sprintf("#%d %s %s %s %s %s", c.ID, c.Client, c.Server, c.Backend, c.Task, c.BackendNetns)
	if c.Lost != nil {
		s += " lost " + c.Lost.Netns + " " + c.Lost.Reason
	}
	return s
}

// listH is the height of the connection list: a third of the view.
func (m Model) listH() int { return max(2, min(len(m.shown), (m.h-2)/3)) }

// Update handles keys.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || len(m.shown) == 0 {
		return m, nil
	}
	prev := m.cursor
	switch k.String() {
	case "up", "k":
		m.cursor--
	case "down", "j":
		m.cursor++
	case "home", "g":
		m.cursor = 0
	case "end", "G":
		m.cursor = len(m.shown) - 1
	default:
		return m, nil
	}
	m.cursor = ui.Clamp(m.cursor, 0, len(m.shown)-1)
	m.follow = m.cursor == len(m.shown)-1
	m.offset = ui.Scroll(m.offset, m.cursor, len(m.shown), m.listH())
	if m.cursor == prev {
		return m, nil
	}
	c := m.conns[m.shown[m.cursor]]
	return m, func() tea.Msg { return SelectMsg{Conn: c} }
}

// View draws the status line, the connection list and the selected
// connection's hops.
func (m Model) View() string {
	lines := []string{m.status()}
	if len(m.conns) == 0 {
		switch m.state {
		case Idle:
			lines = append(lines, "  no trace yet: open a published port's path (2) and press p (probe) or t (watch)")
		case Running:
			lines = append(lines, "  waiting for packets…")
		default:
			lines = append(lines, "  no connection was seen")
		}
		return ui.Block(lines, m.w, m.h)
	}
	lh := m.listH()
	end := min(len(m.shown), m.offset+lh)
	for i := m.offset; i < end; i++ {
		lines = append(lines, m.connLine(m.conns[m.shown[i]], i == m.cursor))
	}
	for len(lines) < lh+1 {
		lines = append(lines, "")
	}
	if c, ok := m.Selected(); ok {
		lines = append(lines, m.detail(c)...)
	}
	return ui.Block(lines, m.w, m.h)
}

func (m Model) status() string {
	st := map[State]string{Idle: "no trace", Running: "running", Done: "done", Failed: "failed"}[m.state]
	s := fmt.Sprintf(" TRACE %s · %s · %s · %s", m.title, st, ui.Count(len(m.conns), "connection"), ui.Count(m.frames, "frame"))
	if len(m.shown) != len(m.conns) {
		s += fmt.Sprintf(" (%d shown)", len(m.shown))
	}
	if m.note != "" {
		s += " · " + m.note
	}
	return m.theme.Header.Render(ui.Fit(s, m.w))
}

// Outcome is a connection's one-word result with its marker.
func Outcome(c flows.Conn) string {
	switch {
	case c.Lost != nil:
		return fmt.Sprintf("%s lost at %s", ui.MarkLost, lostWhere(c.Lost))
	case c.Answered:
		return ui.MarkOK + " reached " + backendName(c)
	case c.Backend != "":
		return "… at " + backendName(c)
	}
	return "… in flight"
}

func lostWhere(l *flows.Lost) string {
	w := l.Netns + "/" + l.Ifname
	if l.Node != "" {
		w = l.Node + "/" + w
	}
	return w
}

func backendName(c flows.Conn) string {
	switch {
	case c.Task != "":
		n := c.Task
		if c.BackendNode != "" {
			n += " on " + c.BackendNode
		}
		return n
	case c.BackendNetns != "":
		return c.BackendNetns
	}
	return c.Backend
}

func (m Model) connLine(c flows.Conn, sel bool) string {
	cur := "  "
	if sel {
		cur = ui.MarkCursor + " "
	}
	s := fmt.Sprintf("%s#%-3d %s %s → %s  %s", cur, c.ID, c.Proto, c.Client, c.Server, Outcome(c))
	if m.w >= 120 {
		s += "  " + ui.Count(len(c.Hops), "hop") + "  " + ui.Count(len(c.Packets), "packet")
		if !c.Start.IsZero() {
			s += "  " + c.Start.UTC().Format("15:04:05.000")
		}
	}
	s = ui.Fit(s, m.w)
	switch {
	case sel:
		return m.theme.Cursor.Render(s)
	case c.Lost != nil:
		return m.theme.Bad.Render(s)
	case c.Answered:
		return m.theme.Good.Render(s)
	}
	return s
}

// detail is the selected connection hop by hop, then its rewrites.
func (m Model) detail(c flows.Conn) []string {
	out := []string{m.theme.Header.Render(ui.Fit(fmt.Sprintf(" ── #%d request hops (%s)", c.ID, Outcome(c)), m.w))}
	out = append(out, hopLines(c.Hops, m.w, -1)...)
	if c.Lost != nil {
		out = append(out, m.theme.Bad.Render(fmt.Sprintf("  %s %s lost after %s: %s", ui.MarkLost, c.Lost.Packet, lostWhere(c.Lost), c.Lost.Reason)))
		for _, e := range c.Lost.Expected {
			out = append(out, "     expected: "+e)
		}
	}
	if len(c.ReplyHops) > 0 {
		out = append(out, m.theme.Header.Render(" ── reply hops"))
		out = append(out, hopLines(c.ReplyHops, m.w, -1)...)
	}
	if len(c.Rewrites) > 0 {
		out = append(out, m.theme.Header.Render(" ── rewrites"))
		for _, r := range c.Rewrites {
			out = append(out, RewriteLine(r))
		}
	}
	return out
}

// HopLines renders sightings as a table; mark (an index) gets a cursor.
func hopLines(hs []flows.Sighting, w, mark int) []string {
	var out []string
	var prev time.Time
	col := 0
	for _, h := range hs {
		col = max(col, ui.Width(h.Where()))
	}
	col = min(col, max(12, w/3))
	for i, h := range hs {
		cur := "  "
		if i == mark {
			cur = ui.MarkCursor + " "
		}
		d := ""
		if !prev.IsZero() && !h.TS.IsZero() {
			d = "+" + fmtDelta(h.TS.Sub(prev))
		}
		prev = h.TS
		s := fmt.Sprintf("%s%2d %s %-3s %s → %s %s", cur, i+1, ui.Fit(h.Where(), col), h.Dir, h.Src, h.Dst, d)
		if h.Encap != "" && w >= 120 {
			s += "  [" + h.Encap + "]"
		}
		out = append(out, s)
	}
	return out
}

// HopLines is hopLines for other views (replay) with a cursor on mark.
func HopLines(hs []flows.Sighting, w, mark int) []string { return hopLines(hs, w, mark) }

func fmtDelta(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// RewriteLine renders one rewrite: where, what, from → to, and why.
func RewriteLine(r flows.Rewrite) string {
	where := r.Netns
	if r.Node != "" {
		where = r.Node + "/" + where
	}
	s := fmt.Sprintf("  %-8s %-12s %s → %s", strings.ToUpper(r.Kind), where, r.From, r.To)
	if r.Seen != "" {
		s += " (" + r.Seen + ")"
	}
	if r.Rule != "" {
		s += "  " + r.Rule
	}
	if r.Note != "" {
		s += "  " + r.Note
	}
	return s
}
