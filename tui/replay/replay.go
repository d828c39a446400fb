// Package replay steps through a capture packet by packet, hop by hop or
// connection by connection, forwards and backwards, on a timeline: where
// the packet is, what it looks like there, and what rewrote it since the
// previous hop.
package replay

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/traceview"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// tickMsg advances playback; gen drops ticks of an earlier play.
type tickMsg struct{ gen int }

// Interval is the playback speed: one sighting per tick.
var Interval = 400 * time.Millisecond

// Model is the replay view.
type Model struct {
	theme   ui.Theme
	w, h    int
	title   string
	err     string
	primary string
	conns   []trace.Flow
	ev      []event
	cur     int
	playing bool
	gen     int
}

// Option configures a Model.
type Option func(*Model)

// WithTheme sets the styles.
func WithTheme(t ui.Theme) Option { return func(m *Model) { m.theme = t } }

// New returns an empty replay view.
func New(opts ...Option) Model {
	m := Model{theme: ui.Plain(), w: 80, h: 20}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// SetConns loads a capture's connections (trace's flows, with every
// packet's hops); title names the files, primary the node whose names go
// without it, err is a read error (the connections read before it are
// shown).
func (m Model) SetConns(title string, cs []trace.Flow, primary string, err error) Model {
	m.title, m.conns, m.ev, m.cur, m.primary = title, cs, events(cs), 0, primary
	m.err = ""
	if err != nil {
		m.err = err.Error()
	}
	return m
}

// SetSize sets the component's size.
func (m Model) SetSize(w, h int) Model { m.w, m.h = max(w, 1), max(h, 1); return m }

// Current is the connection and sighting under the cursor.
func (m Model) Current() (trace.Flow, trace.Hop, bool) {
	if len(m.ev) == 0 {
		return trace.Flow{}, trace.Hop{}, false
	}
	e := m.ev[m.cur]
	return m.conns[e.ci], sighting(m.conns, e), true
}

// KeyMap is the replay view's keys.
type KeyMap struct {
	NextHop, PrevHop, NextPacket, PrevPacket, NextConn, PrevConn, First, Last, Play key.Binding
}

// Keys are the replay view's keys (its help lists them).
var Keys = KeyMap{
	NextHop:    ui.Key("next sighting (hop)", "right", "l"),
	PrevHop:    ui.Key("previous sighting", "left", "h"),
	NextPacket: ui.Key("next packet", "]", "down", "j"),
	PrevPacket: ui.Key("previous packet", "[", "up", "k"),
	NextConn:   ui.Key("next connection", "n"),
	PrevConn:   ui.Key("previous connection", "N"),
	First:      ui.Key("first sighting", "home", "g"),
	Last:       ui.Key("last sighting", "end", "G"),
	Play:       ui.Key("play / pause", "space"),
}

// Bindings lists the keys in the order the help shows them.
func (k KeyMap) Bindings() []key.Binding {
	return []key.Binding{k.NextHop, k.PrevHop, k.NextPacket, k.PrevPacket, k.NextConn, k.PrevConn, k.First, k.Last, k.Play}
}

// Update handles keys and playback ticks.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tickMsg:
		if !m.playing || msg.gen != m.gen {
			return m, nil
		}
		if m.cur >= len(m.ev)-1 {
			m.playing = false
			return m, nil
		}
		m.cur++
		return m, m.tick()
	case tea.KeyPressMsg:
		if len(m.ev) == 0 {
			return m, nil
		}
		switch {
		case key.Matches(msg, Keys.NextHop):
			m.cur = step(m.ev, m.cur, 1, "hop")
		case key.Matches(msg, Keys.PrevHop):
			m.cur = step(m.ev, m.cur, -1, "hop")
		case key.Matches(msg, Keys.NextPacket):
			m.cur = step(m.ev, m.cur, 1, "packet")
		case key.Matches(msg, Keys.PrevPacket):
			m.cur = step(m.ev, m.cur, -1, "packet")
		case key.Matches(msg, Keys.NextConn):
			m.cur = step(m.ev, m.cur, 1, "conn")
		case key.Matches(msg, Keys.PrevConn):
			m.cur = step(m.ev, m.cur, -1, "conn")
		case key.Matches(msg, Keys.First):
			m.cur = 0
		case key.Matches(msg, Keys.Last):
			m.cur = len(m.ev) - 1
		case key.Matches(msg, Keys.Play):
			m.playing = !m.playing
			m.gen++
			if m.playing {
				return m, m.tick()
			}
		}
	}
	return m, nil
}

func (m Model) tick() tea.Cmd {
	gen := m.gen
	return tea.Tick(Interval, func(time.Time) tea.Msg { return tickMsg{gen: gen} })
}

// View draws the status, the timeline, the packet at its hop and the
// connection's packets.
func (m Model) View() string {
	lines := []string{m.status()}
	if m.err != "" {
		lines = append(lines, m.theme.Bad.Render("  "+ui.MarkLost+" "+m.err))
	}
	if len(m.ev) == 0 {
		if m.title == "" {
			lines = append(lines, "  no capture loaded: start with `meshtrace tui --replay FILE...`")
		} else {
			lines = append(lines, "  no packet of a TCP/UDP connection in the capture")
		}
		return ui.Block(lines, m.w, m.h)
	}
	lines = append(lines, m.timeline()...)
	e := m.ev[m.cur]
	c := m.conns[e.ci]
	p := c.Packets[e.pi]
	lines = append(lines,
		m.theme.Header.Render(ui.Fit(fmt.Sprintf(" conn #%d %s %s → %s  %s", c.ID, c.Proto, c.Client, c.Server, traceview.Outcome(c, m.primary)), m.w)),
		fmt.Sprintf(" packet %d/%d  %s %s  len %d  at hop %d/%d", e.pi+1, len(c.Packets), p.Dir, p.Flags, p.Len, e.hi+1, len(p.Hops)))
	if ch := change(c, p, e.hi, m.primary); ch != "" {
		lines = append(lines, m.theme.Changed.Render(" "+ch))
	}
	lines = append(lines, traceview.HopLines(p.Hops, m.primary, m.w, e.hi)...)
	lines = append(lines, m.theme.Header.Render(fmt.Sprintf(" ── packets of #%d", c.ID)))
	room := max(1, m.h-len(lines))
	first := ui.Clamp(e.pi-room/2, 0, max(0, len(c.Packets)-room))
	for i := first; i < min(len(c.Packets), first+room); i++ {
		q := c.Packets[i]
		cur := "   "
		if i == e.pi {
			cur = " " + ui.MarkCursor + " "
		}
		last := ""
		if n := len(q.Hops); n > 0 {
			h := q.Hops[n-1]
			last = "last seen " + traceview.Where(h.Node, h.Netns, h.Ifname, m.primary)
		}
		lines = append(lines, fmt.Sprintf("%s%2d %-7s %-8s %d hops  %s", cur, i+1, q.Dir, q.Flags, len(q.Hops), last))
	}
	return ui.Block(lines, m.w, m.h)
}

func (m Model) status() string {
	pk := 0
	for _, c := range m.conns {
		pk += len(c.Packets)
	}
	play := "paused"
	if m.playing {
		play = "▶ playing"
	}
	s := fmt.Sprintf(" REPLAY %s · %s · %s · sighting %d/%d · %s", m.title, ui.Count(len(m.conns), "connection"), ui.Count(pk, "packet"), min(m.cur+1, len(m.ev)), len(m.ev), play)
	return m.theme.Header.Render(ui.Fit(s, m.w))
}

// timeline draws every sighting in order on one line ("|" where a
// connection starts, "·" for the others), the cursor under it, and the
// times.
func (m Model) timeline() []string {
	w := max(10, m.w-2)
	n := len(m.ev)
	pos := func(i int) int {
		if n <= 1 {
			return 0
		}
		return i * (w - 1) / (n - 1)
	}
	bar := []rune(strings.Repeat("─", w))
	for i, e := range m.ev {
		x := pos(i)
		switch {
		case e.first:
			bar[x] = '|'
		case bar[x] == '─':
			bar[x] = '·'
		}
	}
	cursor := strings.Repeat(" ", pos(m.cur)) + "▲"
	t0 := sighting(m.conns, m.ev[0]).TS
	tc := sighting(m.conns, m.ev[m.cur]).TS
	tn := sighting(m.conns, m.ev[n-1]).TS
	times := fmt.Sprintf(" %s  now +%s  end +%s", t0.UTC().Format("15:04:05.000000"), dur(tc.Sub(t0)), dur(tn.Sub(t0)))
	return []string{" " + string(bar), " " + cursor, times}
}

func dur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d.Microseconds())/1000)
}

// change says what differs from the packet's previous sighting and which
// rewrite explains it.
func change(c trace.Flow, p trace.PacketSum, hi int, primary string) string {
	if hi == 0 {
		return ""
	}
	a, b := p.Hops[hi-1], p.Hops[hi]
	var parts []string
	if a.Src != b.Src {
		parts = append(parts, "src "+a.Src+" → "+b.Src)
	}
	if a.Dst != b.Dst {
		parts = append(parts, "dst "+a.Dst+" → "+b.Dst)
	}
	if len(parts) == 0 {
		return ""
	}
	s := "changed since " + traceview.Where(a.Node, a.Netns, a.Ifname, primary) + ": " + strings.Join(parts, ", ")
	for _, r := range c.Rewrites {
		if (r.From == a.Dst && r.To == b.Dst) || (r.From == a.Src && r.To == b.Src) {
			s += fmt.Sprintf(" (%s in %s)", strings.ToUpper(r.Kind), r.Netns)
			break
		}
	}
	return s
}
