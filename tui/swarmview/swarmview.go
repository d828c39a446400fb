// Package swarmview is the TUI's swarm view: every node of a swarm (a
// directory of node bundles, or a multi-node mesh) against every published
// service, a cell per node and service saying whether the port's path
// from that node reaches every task (swarm.Paths), with swarm check's
// findings marked. Enter on a cell opens that node's path (pathview); esc
// comes back.
package swarmview

import (
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/internal/textsafe"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/pathview"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// Service is one column: a published port and the Docker service that
// publishes it ("" when no node's metadata says).
type Service struct {
	Name  string
	Proto string
	Port  int
}

// Label heads the column.
func (s Service) Label() string {
	p := fmt.Sprintf("%s/%d", s.Proto, s.Port)
	if s.Name != "" {
		return s.Name + " " + p
	}
	return p
}

// Cell is one node × service: the worst verdict of the node's row of
// swarm.Paths for the port, the first stop (why), and swarm check's
// findings for the service on the node.
type Cell struct {
	Verdict  topology.Verdict
	Why      string
	Findings int
}

// Model is the swarm view.
type Model struct {
	theme    ui.Theme
	w, h     int
	title    string
	nodes    []swarm.Node
	services []Service
	cells    [][]Cell // [node][service]
	check    *swarm.Report
	row, col int
	open     bool
	path     pathview.Model
}

// Option configures a Model.
type Option func(*Model)

// WithTheme sets the styles.
func WithTheme(t ui.Theme) Option { return func(m *Model) { m.theme = t } }

// WithTitle sets the title line (the source: a directory, a mesh).
func WithTitle(s string) Option { return func(m *Model) { m.title = s } }

// New returns the view of nodes (in the order given).
func New(nodes []swarm.Node, opts ...Option) Model {
	m := Model{theme: ui.Plain(), w: 80, h: 24, title: "swarm"}
	for _, o := range opts {
		o(&m)
	}
	m.path = pathview.New(pathview.WithTheme(m.theme))
	m.nodes = nodes
	m.services = services(nodes)
	m.check = swarm.Check(nodes)
	m.cells = make([][]Cell, len(nodes))
	for i := range nodes {
		m.cells[i] = make([]Cell, len(m.services))
	}
	for j, s := range m.services {
		r := swarm.Paths(nodes, topology.Query{Proto: s.Proto, Port: s.Port})
		for i, n := range r.Nodes {
			m.cells[i][j] = worst(n.Cells)
		}
	}
	for _, f := range m.check.Findings {
		if f.Severity == "info" {
			continue
		}
		for i, n := range nodes {
			for j, s := range m.services {
				if n.Name == f.Node && s.Name != "" && s.Name == f.Service {
					m.cells[i][j].Findings++
				}
			}
		}
	}
	return m
}

// services are the ports any node publishes, by port, named by Docker's
// metadata where a node has it.
func services(nodes []swarm.Node) []Service {
	byKey := map[string]*Service{}
	for _, n := range nodes {
		if n.Model == nil {
			continue
		}
		for _, p := range topology.PublishedPorts(n.Model) {
			k := fmt.Sprintf("%s/%d", p.Proto, p.Port)
			if byKey[k] == nil {
				byKey[k] = &Service{Proto: p.Proto, Port: p.Port}
			}
		}
		if d := n.Model.Docker; d != nil {
			for _, s := range d.Services {
				for _, p := range s.Ports {
					if sv := byKey[fmt.Sprintf("%s/%d", p.Proto, p.Published)]; sv != nil && sv.Name == "" {
						sv.Name = s.Name
					}
				}
			}
		}
	}
	out := make([]Service, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Proto < out[j].Proto
	})
	return out
}

// worst is a row's worst cell: broken, then unknown, then complete.
func worst(cs []swarm.PathCell) Cell {
	out := Cell{Verdict: topology.VerdictComplete}
	if len(cs) == 0 {
		return Cell{Verdict: topology.VerdictUnknown, Why: "no backend"}
	}
	for _, c := range cs {
		switch {
		case c.Verdict == topology.VerdictBroken && out.Verdict != topology.VerdictBroken,
			c.Verdict == topology.VerdictUnknown && out.Verdict == topology.VerdictComplete:
			out.Verdict = c.Verdict
			out.Why = c.Code
			if c.At != "" {
				out.Why += " on " + c.At
			}
			if c.Reason != "" {
				out.Why += ": " + c.Reason
			}
		}
	}
	return out
}

// SetSize sets the component's size.
func (m Model) SetSize(w, h int) Model {
	m.w, m.h = max(w, 1), max(h, 1)
	m.path = m.path.SetSize(m.w, max(1, m.h-1))
	return m
}

// Open is whether a node's path is shown.
func (m Model) Open() bool { return m.open }

// KeyMap is the swarm view's keys.
type KeyMap struct {
	Up, Down, Left, Right, Open key.Binding
}

// Keys are the swarm view's keys (its help lists them).
var Keys = KeyMap{
	Up:    ui.Key("previous node", "up", "k"),
	Down:  ui.Key("next node", "down", "j"),
	Left:  ui.Key("previous service", "left", "h"),
	Right: ui.Key("next service", "right", "l"),
	Open:  ui.Key("open the node's path for the service (esc comes back)", "enter"),
}

// Bindings lists the keys in the order the help shows them.
func (k KeyMap) Bindings() []key.Binding { return []key.Binding{k.Up, k.Down, k.Left, k.Right, k.Open} }

// Update moves the cursor, opens a cell's path, and passes keys to the
// path while it is open (its esc comes back here).
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	if m.open {
		if _, ok := msg.(pathview.BackMsg); ok {
			m.open = false
			return m, nil
		}
		if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, pathview.Keys.Back) {
			m.open = false // the path's own back, taken here at once
			return m, nil
		}
		var cmd tea.Cmd
		m.path, cmd = m.path.Update(msg)
		return m, cmd
	}
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return m, nil
	}
	switch {
	case key.Matches(k, Keys.Up):
		m.row--
	case key.Matches(k, Keys.Down):
		m.row++
	case key.Matches(k, Keys.Left):
		m.col--
	case key.Matches(k, Keys.Right):
		m.col++
	case key.Matches(k, Keys.Open):
		m = m.openCell()
	}
	m.row = ui.Clamp(m.row, 0, max(0, len(m.nodes)-1))
	m.col = ui.Clamp(m.col, 0, max(0, len(m.services)-1))
	return m, nil
}

// openCell draws the selected node's path of the selected service.
func (m Model) openCell() Model {
	if m.row >= len(m.nodes) || m.col >= len(m.services) {
		return m
	}
	n, s := m.nodes[m.row], m.services[m.col]
	if n.Model == nil {
		return m
	}
	p, err := topology.FindPath(n.Model, topology.Query{Proto: s.Proto, Port: s.Port})
	m.path = m.path.SetPath(n.Model, p, err, delta.Set{}).SetSize(m.w, max(1, m.h-1))
	m.open = true
	return m
}

func cellText(c Cell) string {
	s := "ok"
	switch c.Verdict {
	case topology.VerdictBroken:
		s = ui.MarkLost + " BROKEN"
	case topology.VerdictUnknown:
		s = "? unknown"
	}
	if c.Findings > 0 {
		s += fmt.Sprintf(" !%d", c.Findings)
	}
	return s
}

// View draws the matrix (or the open path under a title line).
func (m Model) View() string {
	if m.open {
		n, s := m.nodes[m.row], m.services[m.col]
		head := m.theme.Title.Render(ui.Fit(fmt.Sprintf(" %s · node %s · %s  (esc: back to the swarm)", textsafe.String(m.title), textsafe.String(n.Name), s.Label()), m.w))
		return head + "\n" + m.path.View()
	}
	verdict := "consistent"
	if !m.check.Consistent {
		verdict = "NOT consistent: " + ui.Count(len(m.check.Findings), "finding")
	}
	lines := []string{
		m.theme.Title.Render(ui.Fit(fmt.Sprintf(" %s · %d nodes × %d services · swarm check: %s", textsafe.String(m.title), len(m.nodes), len(m.services), verdict), m.w)),
	}
	if len(m.services) == 0 {
		lines = append(lines, "  no node publishes a port")
		return ui.Block(lines, m.w, m.h)
	}
	nodeW := len("node")
	for _, n := range m.nodes {
		nodeW = max(nodeW, ui.Width(textsafe.String(n.Name)))
	}
	colW := make([]int, len(m.services))
	for j, s := range m.services {
		colW[j] = max(ui.Width(s.Label()), len("✗ BROKEN !9"))
	}
	var hb strings.Builder
	hb.WriteString("  " + ui.Fit("node", nodeW))
	for j, s := range m.services {
		hb.WriteString("  " + ui.Fit(s.Label(), colW[j]))
	}
	lines = append(lines, m.theme.Header.Render(ui.Fit(hb.String(), m.w)))
	for i, n := range m.nodes {
		var b strings.Builder
		cur := "  "
		if i == m.row {
			cur = ui.MarkCursor + " "
		}
		b.WriteString(cur + ui.Fit(textsafe.String(n.Name), nodeW))
		for j := range m.services {
			t := ui.Fit(cellText(m.cells[i][j]), colW[j])
			st := m.theme.Good
			if m.cells[i][j].Verdict != topology.VerdictComplete {
				st = m.theme.Bad
			}
			if i == m.row && j == m.col {
				st = m.theme.Selected
				t = ui.Fit("["+cellText(m.cells[i][j])+"]", colW[j])
			}
			b.WriteString("  " + st.Render(t))
		}
		lines = append(lines, b.String())
	}
	lines = append(lines, "")
	if m.row < len(m.nodes) && m.col < len(m.services) {
		c := m.cells[m.row][m.col]
		sel := fmt.Sprintf("  %s · %s: ", textsafe.String(m.nodes[m.row].Name), m.services[m.col].Label())
		switch c.Verdict {
		case topology.VerdictComplete:
			sel += "reaches every task"
		default:
			sel += textsafe.String(c.Why)
		}
		lines = append(lines, ui.Wrap(sel, m.w)...)
		for _, f := range m.check.Findings {
			if f.Node == m.nodes[m.row].Name && f.Severity != "info" && (f.Service == "" || f.Service == m.services[m.col].Name) {
				lines = append(lines, ui.Wrap(fmt.Sprintf("  %s %s: %s", strings.ToUpper(string(f.Severity)), f.Code, textsafe.String(f.Summary)), m.w)...)
			}
		}
	}
	lines = append(lines, m.theme.Dim.Render("  arrows: move · enter: the node's path · esc: back"))
	return ui.Block(lines, m.w, m.h)
}
