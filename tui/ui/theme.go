// Package ui holds what the TUI's components share: the theme (styles that
// add colour but never carry meaning alone: every state also has a text
// marker) and small text helpers that measure cells, not bytes.
package ui

import "charm.land/lipgloss/v2"

// Markers say in text what colour only underlines, so the interface reads
// the same with NO_COLOR or on a monochrome terminal.
const (
	MarkCursor  = "▸" // the selected row
	MarkChanged = "*" // changed since the previous refresh
	MarkSeen    = "●" // a traced packet was seen here
	MarkLost    = "✗" // a traced packet disappeared here / the path breaks
	MarkOK      = "✓"
)

// Theme is the set of styles the components render with.
type Theme struct {
	Color    bool
	Title    lipgloss.Style // screen title, tab labels
	TabOn    lipgloss.Style // the active tab
	Header   lipgloss.Style // section headers (role groups, table heads)
	Cursor   lipgloss.Style // the selected row
	Dim      lipgloss.Style // secondary text
	Changed  lipgloss.Style // changed since the last refresh
	Bad      lipgloss.Style // breaks, drops, lost packets
	Good     lipgloss.Style // complete paths, answered flows
	Key      lipgloss.Style // key names in hints and help
	Selected lipgloss.Style // the selected box of a chain
}

// New returns the theme; color false gives text decorations only (bold,
// reverse), as NO_COLOR asks.
func New(colour bool) Theme {
	s := lipgloss.NewStyle()
	t := Theme{
		Color:    colour,
		Title:    s.Bold(true),
		TabOn:    s.Bold(true).Reverse(true),
		Header:   s.Bold(true),
		Cursor:   s.Reverse(true),
		Dim:      s,
		Changed:  s.Bold(true),
		Bad:      s.Bold(true),
		Good:     s,
		Key:      s.Bold(true),
		Selected: s.Bold(true),
	}
	if !colour {
		return t
	}
	fg := func(st lipgloss.Style, c string) lipgloss.Style { return st.Foreground(lipgloss.Color(c)) }
	t.Title = fg(t.Title, "12")
	t.Header = fg(t.Header, "6")
	t.Dim = s.Faint(true)
	t.Changed = fg(t.Changed, "3")
	t.Bad = fg(t.Bad, "1")
	t.Good = fg(t.Good, "2")
	t.Key = fg(t.Key, "5")
	t.Selected = fg(t.Selected, "14")
	return t
}

// Plain is the colourless theme tests render with.
func Plain() Theme { return New(false) }
