// Package textsafe escapes what meshtrace prints for people: every string
// that comes from the system or a bundle (namespace and link names, notes,
// unparsed lines, Docker metadata, doctor's evidence) can hold terminal
// escape sequences, carriage returns or newlines that would rewrite or
// forge what the operator sees. The text renderers pass such strings
// through String, and their whole output through Text; JSON escapes on its
// own and is left alone.
package textsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// String escapes s for one field of text output: C0 and C1 control
// characters (newline and tab included), DEL, the Unicode controls that
// reorder text (bidi overrides, isolates and marks) and bytes that are not
// UTF-8 become Go-style escapes (\n, \x1b, \u202e). Printable text,
// backslashes included, is left as it is.
func String(s string) string { return escape(s, false) }

// Text escapes a rendered text output the way String does, except for its
// newlines and tabs (the renderer's own layout).
func Text(s string) string { return escape(s, true) }

func escape(s string, layout bool) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c < 0x7f || layout && (c == '\n' || c == '\t') {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			break
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unsafeRune(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c < 0x7f, layout && (c == '\n' || c == '\t'):
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\r':
				b.WriteString(`\r`)
			default:
				fmt.Fprintf(&b, `\x%02x`, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, c)
		case unsafeRune(r, n):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune: an invalid byte, a C1 control (U+0080-U+009F: 8-bit CSI
// and friends) or a bidi control.
func unsafeRune(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n == 1,
		r >= 0x80 && r <= 0x9f,
		r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e,
		r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
