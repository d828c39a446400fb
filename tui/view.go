package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/tui/help"
	"github.com/meshtrace/meshtrace/tui/pathview"
	"github.com/meshtrace/meshtrace/tui/ports"
	"github.com/meshtrace/meshtrace/tui/replay"
	"github.com/meshtrace/meshtrace/tui/topo"
	"github.com/meshtrace/meshtrace/tui/traceview"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// View draws the tab bar, the screen, the footer and, on ?, the help.
func (m Model) View() tea.View {
	v := tea.NewView(m.Screen())
	v.AltScreen = true
	v.WindowTitle = "meshtrace"
	return v
}

// Screen is the whole screen as text.
func (m Model) Screen() string {
	lines := []string{m.tabBar()}
	lines = append(lines, ui.Lines(m.body())...)
	lines = append(lines, m.footer())
	s := ui.Block(lines, m.w, m.h)
	if m.showHelp {
		s = m.help.Overlay(s)
	}
	return s
}

func (m Model) body() string {
	bh := max(1, m.h-2)
	noModel := ui.Block([]string{"  no model: start with a source (this host, --from DIR or --mesh NAME) for the topology and the paths"}, m.w, bh)
	switch m.tab {
	case TabTopology:
		if m.cfg.Load == nil {
			return noModel
		}
		if m.model == nil && m.loadErr != nil {
			return ui.Block([]string{"  " + ui.MarkLost + " reading the model failed: " + m.loadErr.Error()}, m.w, bh)
		}
		if m.w >= wide {
			return joinColumns(m.topo.View(), m.pub.View(), m.w-publishedWidth(m.w)-1, bh)
		}
		return m.pub.View() + "\n" + m.topo.View()
	case TabPaths:
		if m.cfg.Load == nil {
			return noModel
		}
		if m.w >= wide {
			return joinColumns(m.ports.View(), m.path.View(), listWidth(m.w), bh)
		}
		if m.pathOpen {
			return m.path.View()
		}
		return m.ports.View()
	case TabTrace:
		return m.trace.View()
	}
	return m.replay.View()
}

// joinColumns puts two blocks side by side with a rule between them.
func joinColumns(left, right string, lw, h int) string {
	l, r := ui.Lines(left), ui.Lines(right)
	out := make([]string, h)
	for i := range out {
		var a, b string
		if i < len(l) {
			a = l[i]
		}
		if i < len(r) {
			b = r[i]
		}
		out[i] = ui.Fit(a, lw) + "│" + b
	}
	return strings.Join(out, "\n")
}

// tabBar names the screens (the shown one in brackets) and the source.
func (m Model) tabBar() string {
	var b strings.Builder
	b.WriteString(m.theme.Title.Render(" meshtrace "))
	for i, n := range tabNames {
		label := fmt.Sprintf(" %d %s ", i+1, n)
		if Tab(i) == m.tab {
			b.WriteString(m.theme.TabOn.Render("[" + label[1:len(label)-1] + "]"))
		} else {
			b.WriteString(label)
		}
	}
	left := b.String()
	parts := m.sourceParts()
	// narrow screens drop the time first, then the change count.
	for len(parts) > 1 && ui.Width(left)+ui.Width(strings.Join(parts, " · "))+2 > m.w {
		parts = parts[:len(parts)-1]
	}
	right := strings.Join(parts, " · ") + " "
	gap := m.w - ui.Width(left) - ui.Width(right)
	if gap < 1 {
		return ui.Fit(left+" "+right, m.w)
	}
	return left + strings.Repeat(" ", gap) + right
}

// sourceParts are what the title bar says about the source, most
// important first.
func (m Model) sourceParts() []string {
	if m.cfg.Load == nil {
		return []string{m.cfg.Source}
	}
	if m.model == nil {
		return []string{m.cfg.Source, "reading…"}
	}
	src := m.model.Source
	if src == "" {
		src = m.cfg.Source
	}
	parts := []string{fmt.Sprintf("%s · %d ns", src, len(m.model.Namespaces))}
	if m.loadErr != nil {
		parts = append(parts, ui.MarkLost+" refresh failed")
	}
	if n := m.changes.Count(); n > 0 {
		parts = append(parts, fmt.Sprintf("%s %d changed", ui.MarkChanged, n))
	}
	return append(parts, m.loadedAt.Format("15:04:05"))
}

// footer is the filter being edited, feedback, or the screen's keys.
func (m Model) footer() string {
	switch {
	case m.filtering:
		return ui.Fit(" / "+m.filter+"█   enter keeps · esc clears", m.w)
	case m.status != "":
		return ui.Fit(" "+m.status, m.w)
	case m.loadErr != nil && m.model != nil:
		return m.theme.Bad.Render(ui.Fit(" "+ui.MarkLost+" refresh: "+m.loadErr.Error(), m.w))
	}
	hint := map[Tab]string{
		TabTopology: "o port's path · ↑↓ move · enter open · p peer · b back",
		TabPaths:    "←→ box · enter rule · p probe · t trace · s stop · esc back",
		TabTrace:    "↑↓ connection · s stop",
		TabReplay:   "←→ hop · [ ] packet · n N connection · space play",
	}[m.tab]
	if m.tab == TabPaths && !m.pathOpen {
		hint = "↑↓ select · enter draw the path"
	}
	f := ""
	if m.filter != "" {
		f = " · filter: " + m.filter
	}
	return ui.Fit(" "+hint+f+" · ? help · q quit", m.w)
}

// helpSections are the shown screen's keys, then the global ones, made
// from the components' key maps: the help lists every key they handle.
func (m Model) helpSections() []help.Section {
	var screen []help.Section
	switch m.tab {
	case TabTopology:
		screen = []help.Section{help.FromKeys("published ports", ports.PublishedKeys.Bindings()...),
			help.FromKeys("topology", topo.Keys.Bindings()...)}
	case TabPaths:
		screen = []help.Section{help.FromKeys("paths: the list", ports.Keys.Bindings()...),
			help.FromKeys("paths: a path", pathview.Keys.Bindings()...)}
	case TabTrace:
		screen = []help.Section{help.FromKeys("trace", append(traceview.Keys.Bindings(), Keys.StopTrace)...)}
	case TabReplay:
		screen = []help.Section{help.FromKeys("replay", replay.Keys.Bindings()...)}
	}
	global := help.FromKeys("everywhere", Keys.Bindings()...)
	overlay := help.FromKeys("this help", help.Keys.Bindings()...)
	legend := help.Section{Title: "marks", Keys: [][2]string{
		{ui.MarkCursor + " ▶ ┏━┓", "selected"}, {ui.MarkChanged, "changed since the previous refresh"},
		{ui.MarkSeen, "a traced packet was seen here"}, {ui.MarkLost, "lost here / the path breaks"}, {ui.MarkOK, "complete / answered"}}}
	return append(screen, global, overlay, legend)
}
