package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/progress"
	"github.com/meshtrace/meshtrace/trace"
)

// TestTraceProgress: a live trace's progress line says it waits for
// traffic, counts frames and flows, and is cleared before every other
// event is handed on (so a flow's text never follows it on its line) and
// at the end.
func TestTraceProgress(t *testing.T) {
	var term bytes.Buffer
	p := progress.To(&term, "trace", 200)
	events := func(yield func(trace.Event) bool) {
		for _, e := range []trace.Event{
			trace.Ready{Points: make([]trace.PointStat, 7)},
			trace.Progress{Frames: 0},
			trace.Progress{Frames: 12},
			trace.FlowEnded{},
			trace.Progress{Frames: 20},
			trace.Done{},
		} {
			if !yield(e) {
				return
			}
		}
	}
	seen := 0
	for e := range withProgress(p, events, true) {
		// What the terminal shows when e is written: the line must be
		// clear (it ends in an erase) unless e is progress itself.
		s := term.String()
		clear := strings.HasSuffix(s, "\r\x1b[K")
		switch e.(type) {
		case trace.FlowEnded, trace.Done:
			if !clear {
				t.Errorf("%T written after %q", e, s[strings.LastIndex(s, "\r"):])
			}
		}
		seen++
	}
	out := term.String()
	for _, want := range []string{"trace: opening the capture points", "trace: capturing at 7 points: waiting for traffic", ": 12 frames, 0 flows ended", ": 20 frames, 1 flows ended"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\r\x1b[K") || seen != 6 {
		t.Errorf("not cleared at the end, or events lost (%d): %q", seen, out)
	}
	// Off a terminal the events pass through untouched.
	n := 0
	for range withProgress(nil, events, true) {
		n++
	}
	if n != 6 {
		t.Errorf("%d events without progress", n)
	}
}
