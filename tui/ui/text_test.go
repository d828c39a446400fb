package ui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// The fast width agrees with the grapheme-aware one on the TUI's text,
// and falls back to it for anything else (wide CJK, emoji, combining).
func TestWidthAgrees(t *testing.T) {
	for _, s := range []string{
		"", "plain ascii", "╭─ ▶ ingress_sbox ━━┓", "→ 172.18.0.2:8080 ⇄ ⤷ ↳ … ✓ ✗ ● ▸ ▲ µs",
		"\x1b[1;38;5;12mbold\x1b[m text", "\x1b[7m▸ reversed\x1b[0m", "日本語", "e\u0301", "👍 ok", "tab\tx",
	} {
		if got, want := Width(s), ansi.StringWidth(s); got != want {
			t.Errorf("Width(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestFitTruncScroll(t *testing.T) {
	if got := Fit("abcdef", 4); got != "abc…" {
		t.Errorf("Fit cut: %q", got)
	}
	if got := Fit("ab", 4); got != "ab  " {
		t.Errorf("Fit pad: %q", got)
	}
	if got := Fit("\x1b[1mab\x1b[m", 3); Width(got) != 3 || !strings.HasPrefix(got, "\x1b[1mab") {
		t.Errorf("Fit styled: %q", got)
	}
	for _, c := range []struct{ off, cur, n, h, want int }{
		{0, 0, 10, 5, 0}, {0, 7, 10, 5, 3}, {3, 2, 10, 5, 2}, {0, 3, 3, 5, 0}, {8, 9, 10, 5, 5},
	} {
		if got := Scroll(c.off, c.cur, c.n, c.h); got != c.want {
			t.Errorf("Scroll(%d,%d,%d,%d) = %d, want %d", c.off, c.cur, c.n, c.h, got, c.want)
		}
	}
}

func TestOverlayKeepsBackground(t *testing.T) {
	bg := strings.TrimSuffix(strings.Repeat("..........\n", 5), "\n")
	got := Overlay(bg, "┌┐\n└┘", 10, 5)
	want := "..........\n....┌┐....\n....└┘....\n..........\n.........."
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if Count(1, "hop") != "1 hop" || Count(3, "hop") != "3 hops" {
		t.Error("Count")
	}
}
