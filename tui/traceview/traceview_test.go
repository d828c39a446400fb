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
		// the counters' cause beside the hop it stopped after.
		{"lost-cause", Done, withLoss(true), nil},
		{"lost-nothing-moved", Done, withLoss(false), nil},
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

// withLoss is tuitest.Conns with the lost flow's counters: a rule that
// counted its packets, or nothing that moved.
func withLoss(cause bool) []trace.Flow {
	cs := tuitest.Conns()
	l := &trace.Loss{At: "between ingress_sbox/eth1 in and ingress_sbox/eth0 out", Lost: 3, LostThere: 3, WindowMS: 2400,
		Netns: []string{"ingress_sbox"}}
	if cause {
		l.Cause = &trace.LossCause{Code: trace.LossRuleDrop, Netns: "ingress_sbox", Counted: 3,
			Evidence: "ingress_sbox filter INPUT rule 2 (-p tcp -m tcp --dport 8080 -j DROP) counted +3"}
	} else {
		l.Summary = "lost between ingress_sbox/eth1 in and ingress_sbox/eth0 out: 3 packet(s) lost there; no drop counter of ingress_sbox moved in 2.4s"
	}
	cs[1].Loss = l
	return cs
}
