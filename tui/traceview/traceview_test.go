package traceview

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
)

func TestView(t *testing.T) {
	cases := []struct {
		name  string
		state State
		conns []trace.Flow
		keys  []string
	}{
		{"idle", Idle, nil, nil},
		{"running-empty", Running, nil, nil},
		// the newest connection is followed: the lost one.
		{"lost", Running, tuitest.Conns(), nil},
		{"reached", Done, tuitest.Conns(), []string{"up"}},
	}
	for _, c := range cases {
		for _, sz := range tuitest.Sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", c.name, sz[0], sz[1]), func(t *testing.T) {
				m := New().SetState(c.state, "tcp/8080 with probe", "").SetConns(c.conns, 42)
				m = tuitest.Run(t, m, sz[0], sz[1], tuitest.Keys(c.keys...)...)
				tuitest.Golden(t, m.View())
			})
		}
	}
}

func TestSelectionSurvivesUpdates(t *testing.T) {
	cs := tuitest.Conns()
	m := New().SetSize(80, 24).SetConns(cs[:1], 10)
	if c, _ := m.Selected(); c.ID != 1 {
		t.Fatalf("selected #%d", c.ID)
	}
	// following: a new connection takes the cursor.
	m = m.SetConns(cs, 20)
	if c, _ := m.Selected(); c.ID != 2 {
		t.Fatalf("follow: selected #%d, want #2", c.ID)
	}
	// once the user moves up, updates keep the cursor on #1.
	m, cmd := m.Update(tuitest.Keys("up")[0])
	if sel, ok := cmd().(SelectMsg); !ok || sel.Conn.ID != 1 {
		t.Fatalf("up gave %#v", cmd())
	}
	more := append(cs, trace.Flow{ID: 3, Proto: "tcp", Client: "192.168.100.2:40002"})
	m = m.SetConns(more, 30)
	if c, _ := m.Selected(); c.ID != 1 {
		t.Fatalf("after update selected #%d, want #1", c.ID)
	}
	m = m.SetFilter("40002")
	if v := tuitest.Plain(m.View()); !strings.Contains(v, "(1 shown)") || !strings.Contains(v, "#3") {
		t.Fatalf("filter:\n%s", v)
	}
}
