package ui

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Width is the display width of s in cells (escape sequences excluded).
// The TUI's own text (ASCII, box drawing, arrows, the marks) is measured
// by a fast path; anything else by the full grapheme-aware measure.
func Width(s string) int {
	if n, ok := simpleWidth(s); ok {
		return n
	}
	return ansi.StringWidth(s)
}

// simpleWidth measures strings made of ASCII, CSI escape sequences and
// one-cell symbols; ok is false for anything else.
func simpleWidth(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b:
			if i+1 >= len(s) || s[i+1] != '[' {
				return 0, false
			}
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j + 1
			continue
		case c >= 0x20 && c < 0x7f:
			n++
			i++
			continue
		case c < 0x80:
			return 0, false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !oneCell(r) {
			return 0, false
		}
		n++
		i += size
	}
	return n, true
}

// oneCell: Latin-1 letters, general punctuation, arrows, box drawing,
// geometric shapes and the check marks are one cell wide.
func oneCell(r rune) bool {
	switch {
	case r >= 0xa0 && r <= 0xff,
		r >= 0x2010 && r <= 0x2027,
		r >= 0x2190 && r <= 0x21ff,
		r >= 0x2500 && r <= 0x25ff,
		r >= 0x2900 && r <= 0x297f,
		r == 0x2713 || r == 0x2717:
		return true
	}
	return false
}

// Trunc cuts s to at most w cells, ending with "…" when it cut.
func Trunc(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// Fit truncates or pads s to exactly w cells.
func Fit(s string, w int) string {
	s = Trunc(s, w)
	if n := Width(s); n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

// Lines splits s into lines ("" gives none).
func Lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Block fits lines into a w x h rectangle: each line truncated and padded
// to w, missing lines blank, extra lines dropped.
func Block(lines []string, w, h int) string {
	if h <= 0 || w <= 0 {
		return ""
	}
	out := make([]string, h)
	blank := strings.Repeat(" ", w)
	for i := range out {
		if i < len(lines) {
			out[i] = Fit(lines[i], w)
		} else {
			out[i] = blank
		}
	}
	return strings.Join(out, "\n")
}

// Scroll returns the first visible row of a list of n rows shown h at a
// time so that cursor stays visible, moving the previous offset as little
// as possible.
func Scroll(offset, cursor, n, h int) int {
	if h <= 0 || n <= h {
		return 0
	}
	if cursor < offset {
		offset = cursor
	}
	if cursor >= offset+h {
		offset = cursor - h + 1
	}
	return max(0, min(offset, n-h))
}

// Clamp keeps v within [lo, hi] (lo when hi < lo).
func Clamp(v, lo, hi int) int {
	if v > hi {
		v = hi
	}
	if v < lo {
		v = lo
	}
	return v
}

// Wrap breaks s into lines of at most w cells, at spaces when it can.
func Wrap(s string, w int) []string {
	if w <= 0 {
		return nil
	}
	return Lines(ansi.Wrap(s, w, " "))
}

// Overlay draws fg centred over bg (a w x h screen), keeping bg visible
// around it.
func Overlay(bg, fg string, w, h int) string {
	bl := Lines(bg)
	for len(bl) < h {
		bl = append(bl, "")
	}
	fl := Lines(fg)
	fw := 0
	for _, l := range fl {
		fw = max(fw, Width(l))
	}
	fw = min(fw, w)
	x := max(0, (w-fw)/2)
	y := max(0, (h-len(fl))/2)
	for i, l := range fl {
		if y+i >= len(bl) {
			break
		}
		row := Fit(bl[y+i], w)
		bl[y+i] = ansi.Truncate(row, x, "") + Fit(l, fw) + ansi.Cut(row, x+fw, w)
	}
	return strings.Join(bl[:h], "\n")
}

// Short shortens a namespace or container id for narrow columns.
func Short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Count is "1 connection", "2 connections".
func Count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
