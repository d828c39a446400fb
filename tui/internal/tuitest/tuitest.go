// Package tuitest runs TUI components under teatest and compares what they
// draw with golden files (testdata/<Test>.golden, refreshed with -update).
package tuitest

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

// Component is what every TUI component package exports.
type Component[T any] interface {
	Update(tea.Msg) (T, tea.Cmd)
	View() string
	SetSize(w, h int) T
}

// harness makes a component a program: it owns the screen, passes every
// message on and runs the commands the component returns, feeding their
// messages back (as the root model would).
type harness[T Component[T]] struct {
	c T
}

func (h harness[T]) Init() tea.Cmd { return nil }

func (h harness[T]) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if ws, ok := msg.(tea.WindowSizeMsg); ok {
		h.c = h.c.SetSize(ws.Width, ws.Height)
		return h, nil
	}
	var cmd tea.Cmd
	h.c, cmd = h.c.Update(msg)
	return h, cmd
}

func (h harness[T]) View() tea.View { return tea.NewView(h.c.View()) }

// Run drives c in a teatest program of w x h cells: it sends msgs in
// order, quits, and returns the component as the program left it.
func Run[T Component[T]](t *testing.T, c T, w, h int, msgs ...tea.Msg) T {
	t.Helper()
	tm := teatest.NewTestModel(t, harness[T]{c: c}, teatest.WithInitialTermSize(w, h))
	for _, m := range msgs {
		tm.Send(m)
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second))
	return final.(harness[T]).c
}

// Golden compares a drawn screen, without escape sequences and trailing
// blanks, with testdata/<Test>.golden.
func Golden(t *testing.T, screen string) {
	t.Helper()
	golden.RequireEqual(t, Plain(screen))
}

// Plain strips escape sequences and trailing spaces.
func Plain(screen string) string {
	lines := strings.Split(ansi.Strip(screen), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

// Keys turns key names into key presses: "down", "enter", "esc", "tab",
// "space", "backspace", "pgdown", or text typed one character at a time.
func Keys(names ...string) []tea.Msg {
	special := map[string]rune{
		"up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight,
		"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "space": tea.KeySpace,
		"backspace": tea.KeyBackspace, "pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp,
		"home": tea.KeyHome, "end": tea.KeyEnd,
	}
	var out []tea.Msg
	for _, n := range names {
		if c, ok := special[n]; ok {
			k := tea.KeyPressMsg{Code: c}
			if c == tea.KeySpace {
				k.Text = " "
			}
			out = append(out, k)
			continue
		}
		if strings.HasPrefix(n, "shift+") && len(n) == len("shift+")+1 {
			out = append(out, tea.KeyPressMsg{Code: rune(n[6]), Mod: tea.ModShift, Text: strings.ToUpper(n[6:])})
			continue
		}
		for _, r := range n {
			out = append(out, tea.KeyPressMsg{Code: r, Text: string(r)})
		}
	}
	return out
}

// Bundle reads and classifies a fixture bundle by name (modern,
// docker112, eastwest).
func Bundle(t testing.TB, name string) *topology.Model {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "fixtures", "bundles", name)
	m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
	if err != nil {
		t.Fatalf("bundle %s: %v", name, err)
	}
	m.Source = "bundle:" + name
	return m
}

// Sizes are the terminal sizes every view is checked at.
var Sizes = [][2]int{{80, 24}, {160, 48}}
