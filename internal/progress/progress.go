// Package progress shows how far a long wait has come (collect over many
// namespaces, swarm collect per node, trace waiting for traffic) on one
// line of standard error, rewritten in place, and only when standard
// error is a terminal: piped or redirected, nothing is written, so logs
// and scripts see the command's output alone.
//
// A nil *Line is valid and does nothing: a caller passes nil (or what
// Stderr gave off a terminal) and calls the methods unconditionally.
//
//	p := progress.Stderr("collect")
//	for i, ns := range namespaces {
//		p.Count(i, len(namespaces), ns)
//		...
//	}
//	p.Clear()
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/charmbracelet/x/term"

	"github.com/meshtrace/meshtrace/internal/textsafe"
)

// Line is one progress line on a terminal. Its methods may be called from
// several goroutines.
type Line struct {
	mu    sync.Mutex
	w     io.Writer
	name  string
	width int
	shown bool
}

// Stderr is a Line on the process's standard error named name ("collect",
// "trace"), or nil when standard error is not a terminal.
func Stderr(name string) *Line {
	return OnTerminal(os.Stderr, name)
}

// OnTerminal is a Line on f when f is a terminal, nil otherwise.
func OnTerminal(f *os.File, name string) *Line {
	if f == nil || !term.IsTerminal(f.Fd()) {
		return nil
	}
	width := 80
	if w, _, err := term.GetSize(f.Fd()); err == nil && w > 0 {
		width = w
	}
	return To(f, name, width)
}

// To is a Line writing to w as if it were a terminal width columns wide
// (the caller decided that w shows progress; tests).
func To(w io.Writer, name string, width int) *Line {
	return &Line{w: w, name: name, width: max(width, 20)}
}

// Say replaces the line with name: text (format and args as fmt's).
func (l *Line) Say(format string, args ...any) {
	if l == nil {
		return
	}
	text := l.name + ": " + textsafe.String(fmt.Sprintf(format, args...))
	// A line that wraps could not be rewritten in place.
	if utf8.RuneCountInString(text) >= l.width {
		r := []rune(text)
		text = string(r[:l.width-2]) + "…"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, "\r\x1b[K"+text)
	l.shown = true
}

// Count says that done of total things are done, and what is being done
// now (a namespace's name, a node's): "collect: 3/40 ingress_sbox".
func (l *Line) Count(done, total int, what string) {
	if l == nil {
		return
	}
	s := fmt.Sprintf("%d/%d", done, total)
	if what != "" {
		s += " " + what
	}
	l.Say("%s", s)
}

// Clear erases the line (before other output goes to the terminal, and
// when the wait is over). It writes nothing when nothing is shown.
func (l *Line) Clear() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown {
		io.WriteString(l.w, "\r\x1b[K")
		l.shown = false
	}
}

// Counter counts finished things from several goroutines and says each
// count: what a worker pool calls as each job ends (collect's namespaces,
// swarm collect's nodes).
type Counter struct {
	l     *Line
	total int
	mu    sync.Mutex
	done  int
}

// Counter is a Counter of total things on l (nil when l is nil).
func (l *Line) Counter(total int) *Counter {
	if l == nil {
		return nil
	}
	l.Count(0, total, "")
	return &Counter{l: l, total: total}
}

// Done counts one more thing done, what names it.
func (c *Counter) Done(what string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.done++
	n := c.done
	c.mu.Unlock()
	c.l.Count(n, c.total, strings.TrimSpace(what))
}
