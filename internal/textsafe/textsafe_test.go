package textsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"eth0":                    "eth0",
		"ingress_sbox":            "ingress_sbox",
		"\x1b[2J\x1b]0;pwned\x07": `\x1b[2J\x1b]0;pwned\x07`,
		"a\nb\tc\rd":              `a\nb\tc\rd`,
		"del\x7f":                 `del\x7f`,
		"c1\u009b31m":             `c1\u009b31m`,
		"bidi\u202eevil":          `bidi\u202eevil`,
		"bad\xffutf8":             `bad\xffutf8`,
		"grüße ↔ ✓ 日本":            "grüße ↔ ✓ 日本",
		`back\slash`:              `back\slash`,
		"":                        "",
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	in := "line 1\tx\nline \x1b[31m2\r\n"
	want := "line 1\tx\nline \\x1b[31m2\\r\n"
	if got := Text(in); got != want {
		t.Errorf("Text(%q) = %q, want %q", in, got, want)
	}
}

// FuzzString: the output never holds a control character, a bidi
// control or invalid UTF-8, and escaping is idempotent.
func FuzzString(f *testing.F) {
	f.Add("\x1b[2Jhello\n")
	f.Add("\u202e\xff\u0085")
	f.Fuzz(func(t *testing.T, s string) {
		got := String(s)
		if !utf8.ValidString(got) {
			t.Fatalf("String(%q) = %q: invalid UTF-8", s, got)
		}
		for i, r := range got {
			if r < 0x20 || r == 0x7f || unsafeRune(r, utf8.RuneLen(r)) {
				t.Fatalf("String(%q) = %q: %U at %d", s, got, r, i)
			}
		}
		if String(got) != got {
			t.Fatalf("String is not idempotent on %q", s)
		}
		if !strings.Contains(Text(s+"\n"), "\n") {
			t.Fatalf("Text dropped the layout's newline")
		}
	})
}
