package help

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
)

var sections = []Section{
	{"path", [][2]string{{"← →", "select a box"}, {"enter", "open or close the box's rule / IPVS entry"}, {"p", "trace with a probe"}}},
	{"everywhere", [][2]string{{"1 2 3 4", "topology, paths, trace, replay"}, {"/", "filter"}, {"?", "this help"}, {"q", "quit"}}},
}

func TestView(t *testing.T) {
	for _, sz := range tuitest.Sizes {
		for _, keys := range [][]string{nil, {"down"}} {
			t.Run(fmt.Sprintf("%dx%d/%d", sz[0], sz[1], len(keys)), func(t *testing.T) {
				m := tuitest.Run(t, New(sections), sz[0], sz[1], tuitest.Keys(keys...)...)
				bg := strings.TrimSuffix(strings.Repeat(strings.Repeat(".", sz[0])+"\n", sz[1]), "\n")
				tuitest.Golden(t, m.Overlay(bg))
			})
		}
	}
}

func TestScrollsWhenTooSmall(t *testing.T) {
	m := New(sections).SetSize(60, 8)
	if v := m.View(); !strings.Contains(v, "↓ more") {
		t.Fatalf("a clipped help does not say there is more:\n%s", v)
	}
	for range 20 {
		m, _ = m.Update(tuitest.Keys("down")[0])
	}
	if v := tuitest.Plain(m.View()); !strings.Contains(v, "q        quit") {
		t.Fatalf("scrolled to the end, the last key is not shown:\n%s", v)
	}
	_, cmd := m.Update(tuitest.Keys("esc")[0])
	if cmd == nil || cmd() != (CloseMsg{}) {
		t.Fatal("esc does not close")
	}
}
