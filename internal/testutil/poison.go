package testutil

import (
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/textsafe"
)

// Hostile is what Poison appends to strings: a terminal escape sequence
// (clear the screen, set the title), a carriage return, a bidi override
// and a newline that would forge a line of output.
const Hostile = "\x1b[2J\x1b]0;owned\x07\r\u202e\nFORGED line"

// Poison appends Hostile to every string reachable from v (a pointer):
// struct fields, slice and array elements, map values (keys stay), through
// pointers. Tests render the result and check it with NoRawControl.
func Poison(v any) {
	textsafe.Walk(v, func(s string) string { return s + Hostile })
}

// NoRawControl fails the test when text output holds a control character
// other than its own newlines and tabs, a bidi override, or a line forged
// by a string's newline (one starting with "FORGED"). It reports whether
// the output was clean.
func NoRawControl(t testing.TB, what, out string) bool {
	t.Helper()
	for i, r := range out {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x202e {
			t.Errorf("%s: raw control character %U at byte %d: %q", what, r, i, around(out, i))
			return false
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "FORGED") {
			t.Errorf("%s: a string's newline forged the line %q", what, l)
			return false
		}
	}
	if !strings.Contains(out, "FORGED") {
		t.Errorf("%s: no poisoned string was printed at all (the test proves nothing)", what)
		return false
	}
	return true
}

func around(s string, i int) string {
	return s[max(0, i-40):min(len(s), i+40)]
}
