// Package help is the `?` overlay: the keys of the current screen and the
// global ones, in a box drawn over the screen.
package help

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/tui/ui"
)

// Section is a titled group of key bindings: {keys, what they do}.
type Section struct {
	Title string
	Keys  [][2]string
}

// FromKeys is a section listing key bindings, as their help says.
func FromKeys(title string, bindings ...key.Binding) Section {
	s := Section{Title: title}
	for _, b := range bindings {
		if b.Enabled() {
			s.Keys = append(s.Keys, [2]string{b.Help().Key, b.Help().Desc})
		}
	}
	return s
}

// KeyMap is the overlay's own keys.
type KeyMap struct{ Down, Up, Close key.Binding }

// Keys are the overlay's keys.
var Keys = KeyMap{
	Down:  ui.Key("scroll down", "down", "j"),
	Up:    ui.Key("scroll up", "up", "k"),
	Close: ui.Key("close the help", "?", "esc", "q", "enter"),
}

// Bindings lists the keys in the order the help shows them.
func (k KeyMap) Bindings() []key.Binding { return []key.Binding{k.Down, k.Up, k.Close} }

// CloseMsg says the overlay was dismissed.
type CloseMsg struct{}

// Model is the overlay.
type Model struct {
	theme    ui.Theme
	w, h     int
	sections []Section
	offset   int
}

// Option configures a Model.
type Option func(*Model)

// WithTheme sets the styles.
func WithTheme(t ui.Theme) Option { return func(m *Model) { m.theme = t } }

// New returns the overlay for the given sections.
func New(sections []Section, opts ...Option) Model {
	m := Model{theme: ui.Plain(), w: 80, h: 24, sections: sections}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// SetSections replaces what the overlay lists (the root passes the
// current screen's keys first).
func (m Model) SetSections(s []Section) Model { m.sections, m.offset = s, 0; return m }

// SetSize sets the screen size the overlay is drawn on.
func (m Model) SetSize(w, h int) Model { m.w, m.h = max(w, 1), max(h, 1); return m }

// Update scrolls with the arrows; ?, esc, q and enter close it.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return m, nil
	}
	switch {
	case key.Matches(k, Keys.Down):
		m.offset = min(m.offset+1, max(0, len(m.lines())-m.bodyH()))
	case key.Matches(k, Keys.Up):
		m.offset = max(0, m.offset-1)
	case key.Matches(k, Keys.Close):
		return m, func() tea.Msg { return CloseMsg{} }
	}
	return m, nil
}

func (m Model) lines() []string {
	kw := 0
	for _, s := range m.sections {
		for _, k := range s.Keys {
			kw = max(kw, ui.Width(k[0]))
		}
	}
	kw = min(kw, 20)
	var out []string
	for i, s := range m.sections {
		if i > 0 {
			out = append(out, "")
		}
		out = append(out, m.theme.Header.Render(s.Title))
		for _, k := range s.Keys {
			out = append(out, "  "+m.theme.Key.Render(ui.Fit(k[0], kw))+"  "+k[1])
		}
	}
	return out
}

// bodyH is how many lines fit inside the box.
func (m Model) bodyH() int { return max(1, m.h-4) }

// View draws the box alone; Overlay draws it over a screen.
func (m Model) View() string {
	lines := m.lines()
	inner := 0
	for _, l := range lines {
		inner = max(inner, ui.Width(l))
	}
	inner = min(max(inner, 40), m.w-4)
	body := lines[min(m.offset, len(lines)):]
	more := len(body) > m.bodyH()
	body = body[:min(len(body), m.bodyH())]
	title := " help · ? or esc closes "
	if more {
		title = " help · ↓ more · ? or esc closes "
	}
	t := ui.Trunc("─"+title, inner+2)
	out := []string{"┌" + t + strings.Repeat("─", max(0, inner+2-ui.Width(t))) + "┐"}
	for _, l := range body {
		out = append(out, "│ "+ui.Fit(l, inner)+" │")
	}
	out = append(out, "└"+strings.Repeat("─", inner+2)+"┘")
	return strings.Join(out, "\n")
}

// Overlay draws the help box centred over screen.
func (m Model) Overlay(screen string) string {
	return ui.Overlay(screen, m.View(), m.w, m.h)
}
