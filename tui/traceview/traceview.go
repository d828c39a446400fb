// Package traceview lists the connections of a live trace as they are
// seen, and shows the selected one hop by hop: the tuple at every capture
// point, each rewrite and what explains it, and where a lost packet
// disappeared.
package traceview

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// SelectMsg says which connection is selected (the root marks its
// position on the path).
type SelectMsg struct{ Conn trace.Flow }

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
	theme ui.Theme
	w, h  int
	title string
	state State
	note  string
	// primary is the node drawn (the path's): its names go without the
	// node.
	primary string
	conns   []trace.Flow
	shown   []int
	filter  string
	cursor  int
	offset  int
	follow  bool // the cursor follows the newest connection
	frames  int
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

// SetPrimary names the node the path is drawn for: names on it go
// without the node.
func (m Model) SetPrimary(node string) Model { m.primary = node; return m }

// SetConns replaces the connections (trace's flows); the cursor stays on
// the same connection, or follows the newest until the user moves it.
func (m Model) SetConns(cs []trace.Flow, frames int) Model {
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
func (m Model) Selected() (trace.Flow, bool) {
	if m.cursor < len(m.shown) {
		return m.conns[m.shown[m.cursor]], true
	}
	return trace.Flow{}, false
}

func (m Model) apply() Model {
	m.shown = m.shown[:0:0]
	f := strings.ToLower(m.filter)
	for i, c := range m.conns {
		if f == "" || strings.Contains(strings.ToLower(searchText(c, m.primary)), f) {
			m.shown = append(m.shown, i)
		}
	}
	m.cursor = ui.Clamp(m.cursor, 0, max(0, len(m.shown)-1))
	return m
}

func searchText(c trace.Flow, primary string) string {
	b := backendOf(c, primary)
	s := fmt.Sprintf("#%d %s %s %s %s %s", c.ID, c.Client, c.Server, b.ip, b.task, b.netns)
	if c.Stop != nil {
		s += " lost " + c.Stop.Netns + " " + c.Stop.Reason
	}
	return s
}

// backend is what the views say about a flow's backend: its address,
// namespace, node (empty on the primary) and task.
type backend struct{ ip, netns, node, task string }

func backendOf(c trace.Flow, primary string) backend {
	b := c.Backend
	if b == nil {
		return backend{}
	}
	out := backend{ip: b.IP, node: Node(b.Node, primary), task: b.Task}
	if b.Netns != nil {
		out.netns = *b.Netns
	}
	return out
}

// Node is a node's name as the views write it: empty for the primary.
func Node(node, primary string) string {
	if node == primary {
		return ""
	}
	return node
}

// Where is "netns/ifname" of a sighting, with its node when it is not
// the primary.
func Where(node, netns, ifname, primary string) string {
	w := netns + "/" + ifname
	if n := Node(node, primary); n != "" {
		w = n + "/" + w
	}
	return w
}

// listH is the height of the connection list: a third of the view.
func (m Model) listH() int { return max(2, min(len(m.shown), (m.h-2)/3)) }

// KeyMap is the trace view's keys.
type KeyMap struct {
	Up, Down, First, Last key.Binding
}

// Keys are the trace view's keys (its help lists them).
var Keys = KeyMap{
	Up:    ui.Key("previous connection (its position is marked on the path)", "up", "k"),
	Down:  ui.Key("next connection", "down", "j"),
	First: ui.Key("first connection", "home", "g"),
	Last:  ui.Key("last connection (and follow the newest)", "end", "G"),
}

// Bindings lists the keys in the order the help shows them.
func (k KeyMap) Bindings() []key.Binding { return []key.Binding{k.Up, k.Down, k.First, k.Last} }

// Update handles keys.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || len(m.shown) == 0 {
		return m, nil
	}
	prev := m.cursor
	switch {
	case key.Matches(k, Keys.Up):
		m.cursor--
	case key.Matches(k, Keys.Down):
		m.cursor++
	case key.Matches(k, Keys.First):
		m.cursor = 0
	case key.Matches(k, Keys.Last):
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
func Outcome(c trace.Flow, primary string) string {
	switch {
	case c.Stop != nil:
		s := fmt.Sprintf("%s lost at %s", ui.MarkLost, Where(c.Stop.Node, c.Stop.Netns, c.Stop.Ifname, primary))
		if c.Loss != nil && c.Loss.Cause != nil {
			s += " (" + string(c.Loss.Cause.Code) + ")"
		}
		return s
	case c.Answered:
		return ui.MarkOK + " reached " + backendName(c, primary)
	case c.Backend != nil:
		return "… at " + backendName(c, primary)
	}
	return "… in flight"
}

func backendName(c trace.Flow, primary string) string {
	b := backendOf(c, primary)
	switch {
	case b.task != "":
		n := b.task
		if b.node != "" {
			n += " on " + b.node
		}
		return n
	case b.netns != "":
		return b.netns
	}
	return b.ip
}

func (m Model) connLine(c trace.Flow, sel bool) string {
	cur := "  "
	if sel {
		cur = ui.MarkCursor + " "
	}
	s := fmt.Sprintf("%s#%-3d %s %s → %s  %s", cur, c.ID, c.Proto, c.Client, c.Server, Outcome(c, m.primary))
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
	case c.Stop != nil:
		return m.theme.Bad.Render(s)
	case c.Answered:
		return m.theme.Good.Render(s)
	}
	return s
}

// detail is the selected connection hop by hop, then its rewrites.
func (m Model) detail(c trace.Flow) []string {
	out := []string{m.theme.Header.Render(ui.Fit(fmt.Sprintf(" ── #%d request hops (%s)", c.ID, Outcome(c, m.primary)), m.w))}
	out = append(out, HopLines(c.Hops, m.primary, m.w, -1)...)
	if s := c.Stop; s != nil {
		out = append(out, m.theme.Bad.Render(fmt.Sprintf("  %s %s lost after %s: %s", ui.MarkLost, s.Packet, Where(s.Node, s.Netns, s.Ifname, m.primary), s.Reason)))
		if c.Loss != nil {
			out = append(out, m.theme.Bad.Render(ui.Fit("     "+CauseLine(c.Loss), m.w)))
		}
		for _, e := range s.Expected {
			out = append(out, "     expected: "+e)
		}
	} else if c.Loss != nil { // answered, but segments were lost on the way
		out = append(out, m.theme.Bad.Render(ui.Fit(fmt.Sprintf("  %s %d packet(s) lost %s", ui.MarkLost, c.Loss.Lost, c.Loss.At), m.w)))
		out = append(out, m.theme.Bad.Render(ui.Fit("     "+CauseLine(c.Loss), m.w)))
	}
	if len(c.ReplyHops) > 0 {
		out = append(out, m.theme.Header.Render(" ── reply hops"))
		out = append(out, HopLines(c.ReplyHops, m.primary, m.w, -1)...)
	}
	if len(c.Rewrites) > 0 {
		out = append(out, m.theme.Header.Render(" ── rewrites"))
		for _, r := range c.Rewrites {
			out = append(out, RewriteLine(r, m.primary))
		}
	}
	return out
}

// CauseLine says what the counters say of a loss, beside the hop where
// the flow stopped: the cause that matches best with its evidence and
// counts, or that no drop counter moved (or none was read).
func CauseLine(l *trace.Loss) string {
	win := (time.Duration(l.WindowMS) * time.Millisecond).String()
	if c := l.Cause; c != nil {
		s := fmt.Sprintf("cause: %s, consistent with %s; %d lost there in %s", c.Code, c.Evidence, l.LostThere, win)
		if len(l.Also) > 0 {
			s += fmt.Sprintf(" (+%d other counter(s) moved)", len(l.Also))
		}
		return s
	}
	_, why, _ := strings.Cut(l.Summary, ": ")
	return "cause: none named from counters: " + why
}

// HopLines renders sightings as a table; mark (an index) gets a cursor.
func HopLines(hs []trace.Hop, primary string, w, mark int) []string {
	var out []string
	var prev time.Time
	col := 0
	for _, h := range hs {
		col = max(col, ui.Width(Where(h.Node, h.Netns, h.Ifname, primary)))
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
		s := fmt.Sprintf("%s%2d %s %-3s %s → %s %s", cur, i+1, ui.Fit(Where(h.Node, h.Netns, h.Ifname, primary), col), h.Dir, h.Src, h.Dst, d)
		if h.Encap != "" && w >= 120 {
			s += "  [" + h.Encap + "]"
		}
		out = append(out, s)
	}
	return out
}

func fmtDelta(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// RewriteLine renders one rewrite: where, what, from → to, and why (the
// load balancer's fwmark and scheduler, the rule, the note).
func RewriteLine(r trace.Rewrite, primary string) string {
	where := r.Netns
	if n := Node(r.Node, primary); n != "" {
		where = n + "/" + where
	}
	s := fmt.Sprintf("  %-8s %-12s %s → %s", strings.ToUpper(r.Kind), where, r.From, r.To)
	if r.Seen != "" {
		s += " (" + r.Seen + ")"
	}
	if r.Rule != "" {
		s += "  " + r.Rule
	}
	note := r.Note
	if r.Kind == "ipvs" && r.FWMark != 0 {
		note = strings.TrimSpace(fmt.Sprintf("FWM %d %s %s", r.FWMark, r.Scheduler, note))
	}
	if note != "" {
		s += "  " + note
	}
	return s
}
