package ports

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/tui/ui"
)

// Published is the first screen's panel beside the topology: the node's
// published ports with their services and verdicts, one selected; o opens
// the selected port's path (OpenMsg), [ and ] select another. It keeps its
// own selection, apart from the paths list's.
type Published struct {
	theme   ui.Theme
	w, h    int
	all     []Entry // published ports only
	cursor  int
	loading bool
}

// NewPublished returns an empty panel (shown as loading until
// SetEntries).
func NewPublished(opts ...Option) Published {
	m := New(opts...)
	return Published{theme: m.theme, w: 40, h: 8, loading: true}
}

// SetEntries keeps the published ports of es (Build's), the selection on
// the same port.
func (p Published) SetEntries(es []Entry) Published {
	var cur string
	if e, ok := p.Selected(); ok {
		cur = e.Title()
	}
	p.all, p.loading = nil, false
	for _, e := range es {
		if !e.VIP() {
			p.all = append(p.all, e)
		}
	}
	p.cursor = 0
	for i, e := range p.all {
		if e.Title() == cur {
			p.cursor = i
		}
	}
	return p
}

// SetSize sets the panel's size.
func (p Published) SetSize(w, h int) Published {
	p.w, p.h = max(w, 1), max(h, 1)
	return p
}

// Len is how many ports are published.
func (p Published) Len() int { return len(p.all) }

// Selected is the port selected.
func (p Published) Selected() (Entry, bool) {
	if p.cursor < len(p.all) {
		return p.all[p.cursor], true
	}
	return Entry{}, false
}

// PublishedKeyMap is the panel's keys.
type PublishedKeyMap struct {
	Open, Next, Prev key.Binding
}

// PublishedKeys are the panel's keys on the first screen (its help lists
// them); none is one the topology takes.
var PublishedKeys = PublishedKeyMap{
	Open: ui.Key("draw the selected published port's path", "o"),
	Next: ui.Key("select the next published port", "]"),
	Prev: ui.Key("select the previous published port", "["),
}

// Bindings lists the keys in the order the help shows them.
func (k PublishedKeyMap) Bindings() []key.Binding { return []key.Binding{k.Open, k.Next, k.Prev} }

// Handles reports whether k is one of the panel's keys.
func (p Published) Handles(k tea.KeyPressMsg) bool {
	return key.Matches(k, PublishedKeys.Open, PublishedKeys.Next, PublishedKeys.Prev)
}

// Update handles the panel's keys; o opens the selected port's path.
func (p Published) Update(msg tea.Msg) (Published, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return p, nil
	}
	switch {
	case key.Matches(k, PublishedKeys.Open):
		if e, ok := p.Selected(); ok {
			return p, func() tea.Msg { return OpenMsg{Entry: e} }
		}
	case key.Matches(k, PublishedKeys.Next):
		p.cursor++
	case key.Matches(k, PublishedKeys.Prev):
		p.cursor--
	}
	p.cursor = ui.Clamp(p.cursor, 0, max(0, len(p.all)-1))
	return p, nil
}

// View draws the panel: a header with its keys, a line per port (as many
// as fit, the selected one among them, then how many more).
func (p Published) View() string {
	head := "  PUBLISHED"
	if len(p.all) > 0 {
		head += fmt.Sprintf(" (%d)  o opens its path · [ ] another", len(p.all))
	}
	lines := []string{p.theme.Header.Render(ui.Fit(head, p.w))}
	switch {
	case p.loading:
		lines = append(lines, "  reading the model…")
	case len(p.all) == 0:
		lines = append(lines, "  no port published on this node")
	}
	rows := max(1, p.h-1)
	first := 0
	if len(p.all) > rows {
		rows-- // the last line says how many more
		first = ui.Clamp(p.cursor-rows+1, 0, len(p.all)-rows)
	}
	end := min(len(p.all), first+rows)
	for i := first; i < end; i++ {
		lines = append(lines, p.line(p.all[i], i == p.cursor))
	}
	if n := len(p.all) - end + first; n > 0 {
		lines = append(lines, fmt.Sprintf("  … %d more: 2 lists them all", n))
	}
	return ui.Block(lines, p.w, p.h)
}

func (p Published) line(e Entry, sel bool) string {
	// The topology has the cursor (▸): the port o opens is marked o.
	cur := "  "
	if sel {
		cur = "o "
	}
	s := ui.Fit(fmt.Sprintf("%s%-10s %-12s %-11s %d backends", cur, e.Title(), ui.Trunc(orDash(e.Service), 12), e.state(), len(e.Backends)), p.w)
	switch {
	case sel:
		return p.theme.Cursor.Render(s)
	case !e.Complete && !e.Unknown:
		return p.theme.Bad.Render(s)
	}
	return s
}
