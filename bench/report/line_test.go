package report

import (
	"strings"
	"testing"
	"time"
)

// TestLineRoundTrip prints lines and parses them back, skipping other
// output, and formats values without spaces.
func TestLineRoundTrip(t *testing.T) {
	var l Line
	l.Name = "inspect-200"
	l.Set("ratio", 14.71)
	l.Set("floor_ratio", 2.6)
	l.Set("ms", 89*time.Millisecond)
	l.Set("note", "two words")
	l.Set("ratio", 15.0) // replaces
	l.Met("ratio>=40", false)
	got := l.String()
	want := "bench inspect-200 ratio=15.0 floor_ratio=2.60 ms=89.0 note=two_words target=ratio>=40 met=no"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	lines, err := Parse(strings.NewReader("12:00 progress\n" + got + "\nbench run date=x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].String() != want || lines[1].Get("date") != "x" {
		t.Fatalf("parsed %v", lines)
	}
	if _, err := Parse(strings.NewReader("bench x ok=1 broken\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a field without = parsed: %v", err)
	}
}

// TestFormat keeps 3 significant digits or so, whatever the magnitude.
func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{{1234.5, "1234"}, {12.345, "12.3"}, {1.2345, "1.23"}, {0.012345, "0.0123"}, {0.0, "0"}, {7, "7"}, {true, "yes"}, {uint64(3), "3"}, {1500 * time.Microsecond, "1.50"}} {
		if got := Format(c.v); got != c.want {
			t.Errorf("Format(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestReadme puts every measure in the table, the figure's keys in
// order, "not run" for a missing one, the error of a failed one, and the
// raw lines at the end.
func TestReadme(t *testing.T) {
	lines, err := Parse(strings.NewReader(`bench inspect-200 ratio=9.33 floor_ratio=2.63 ms=174 floor_ms=66.0 loop_ms=1620 extra=1 target=ratio>=40,floor_ratio<=1.5 met=no
bench swarm-check-50 status=not-built inspect_from_ms=56051 target=ms<=1000
bench replay-1M status=error error=tshark:_not_found
bench run date=2026-12-05T00:30Z cores=2 kernel=linux-6.18 load_start=4.92 seconds=338
`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Readme(&b, lines); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| inspect-200 | ratio 9.33, floor_ratio 2.63, ms 174, floor_ms 66.0, loop_ms 1620 | ratio>=40, floor_ratio<=1.5 | no |",
		"| swarm-check-50 | status not-built, inspect_from_ms 56051 | ms<=1000 | — |",
		"| replay-1M | status error, error: tshark:_not_found |",
		"| inspect-2000 | not run |",
		"Measured 2026-12-05T00:30Z on 2 cores (linux-6.18), load average 4.92 at the start; the whole run took 338 s.",
		"bench inspect-200 ratio=9.33 floor_ratio=2.63 ms=174 floor_ms=66.0 loop_ms=1620 extra=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	if strings.Contains(out, "extra 1") {
		t.Error("a key outside the figure is in the table")
	}
}
