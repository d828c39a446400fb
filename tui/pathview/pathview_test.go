package pathview

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
)

func pathOf(t *testing.T, m *topology.Model, q topology.Query) *topology.Path {
	t.Helper()
	p, err := topology.FindPath(m, q)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestView(t *testing.T) {
	ew := topology.Query{Proto: "tcp", VIP: netip.MustParseAddr("10.0.1.5"), Netns: "5f0c3a9e1d27", Port: 80}
	cases := []struct {
		name, bundle string
		q            topology.Query
		marks        Marks
		keys         []string
	}{
		// the client box is selected and open.
		{"modern", "modern", topology.Query{Proto: "tcp", Port: 8080}, Marks{}, nil},
		// the DNAT box: its rule and counters.
		{"modern-dnat", "modern", topology.Query{Proto: "tcp", Port: 8080}, Marks{}, []string{"right"}},
		// the IPVS box: the service and its real servers.
		{"modern-ipvs", "modern", topology.Query{Proto: "tcp", Port: 8080}, Marks{}, []string{"right", "right", "right", "right"}},
		// the last backend: a remote node.
		{"modern-remote", "modern", topology.Query{Proto: "tcp", Port: 8080}, Marks{}, []string{"end"}},
		// Docker 1.12: REDIRECT in the sandbox.
		{"docker112", "docker112", topology.Query{Proto: "tcp", Port: 8080}, Marks{}, []string{"end", "left"}},
		{"eastwest", "eastwest", ew, Marks{}, []string{"right", "right"}},
		{"detail-closed", "modern", topology.Query{Proto: "tcp", Port: 8080}, Marks{}, []string{"enter"}},
		// a traced connection reached the local task.
		{"trace-reached", "modern", topology.Query{Proto: "tcp", Port: 8080}, Marks{
			Seen:    map[string]bool{"host": true, "host/docker_gwbridge": true, "ingress_sbox": true, "09cd513d96a2": true},
			Reached: "10.0.0.4", Status: "trace done · 1 connection · #1 reached web.1 ✓",
		}, nil},
		// a connection lost in the sandbox.
		{"trace-lost", "modern", topology.Query{Proto: "tcp", Port: 8080}, Marks{
			Seen: map[string]bool{"host": true, "ingress_sbox": true}, Lost: "ingress_sbox",
			Status: "trace capturing · 1 connection · #1 ✗ lost at ingress_sbox/eth1",
		}, nil},
	}
	for _, c := range cases {
		for _, sz := range tuitest.Sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", c.name, sz[0], sz[1]), func(t *testing.T) {
				tm := tuitest.Bundle(t, c.bundle)
				m := New().SetPath(tm, pathOf(t, tm, c.q), nil, delta.Set{}).SetMarks(c.marks)
				m = tuitest.Run(t, m, sz[0], sz[1], tuitest.Keys(c.keys...)...)
				tuitest.Golden(t, m.View())
			})
		}
	}
}

func TestBrokenAndErrors(t *testing.T) {
	tm := tuitest.Bundle(t, "modern")
	// take the backends away: the IPVS service has no real servers.
	sb := tm.Lookup("ingress_sbox")
	sb.IPVS.Services[0].Dests = nil
	m := New().SetSize(80, 24).SetPath(tm, pathOf(t, tm, topology.Query{Proto: "tcp", Port: 8080}), nil, delta.Set{})
	v := tuitest.Plain(m.View())
	for _, want := range []string{"BROKEN at ingress_sbox", "✗ BREAK ingress_sbox", "has no real"} {
		if !strings.Contains(v, want) {
			t.Errorf("broken path does not show %q:\n%s", want, v)
		}
	}
	m = m.SetPath(tm, nil, errors.New("tcp/9 is not published on this node"), delta.Set{})
	if v := tuitest.Plain(m.View()); !strings.Contains(v, "✗ tcp/9 is not published") {
		t.Errorf("error not shown:\n%s", v)
	}
}

func TestChangedRuleHighlighted(t *testing.T) {
	old := tuitest.Bundle(t, "modern")
	cur := tuitest.Bundle(t, "modern")
	r := cur.Lookup("host").Firewall.Table("nat").Chain("DOCKER-INGRESS").Rules[0]
	r.Packets += 5
	m := New().SetSize(160, 48).SetPath(cur, pathOf(t, cur, topology.Query{Proto: "tcp", Port: 8080}), nil, delta.Compare(old, cur))
	m, _ = m.Update(tuitest.Keys("right")[0])
	v := tuitest.Plain(m.View())
	if !strings.Contains(v, "counters: 8 packets") || !strings.Contains(v, "+5 packets since the previous refresh") {
		t.Errorf("moved counter not shown:\n%s", v)
	}
	// a new real server is highlighted on the IPVS box's detail.
	old2 := tuitest.Bundle(t, "modern")
	cur2 := tuitest.Bundle(t, "modern")
	old2.Lookup("ingress_sbox").IPVS.Services[0].Dests = old2.Lookup("ingress_sbox").IPVS.Services[0].Dests[:1]
	m = New().SetSize(160, 48).SetPath(cur2, pathOf(t, cur2, topology.Query{Proto: "tcp", Port: 8080}), nil, delta.Compare(old2, cur2))
	for _, k := range tuitest.Keys("right", "right", "right", "right") {
		m, _ = m.Update(k)
	}
	if v := tuitest.Plain(m.View()); !strings.Contains(v, "10.0.0.6:0 masq weight 1 active 0 inactive 0  * new") {
		t.Errorf("new backend not highlighted:\n%s", v)
	}
}

func TestKeysAskRoot(t *testing.T) {
	tm := tuitest.Bundle(t, "eastwest")
	p := pathOf(t, tm, topology.Query{Proto: "tcp", VIP: netip.MustParseAddr("10.0.1.5"), Netns: "5f0c3a9e1d27"})
	m := New().SetSize(80, 24).SetPath(tm, p, nil, delta.Set{})
	for key, want := range map[string]any{"t": TraceMsg{}, "p": TraceMsg{Probe: true}, "s": StopMsg{}, "c": NextClientMsg{}, "esc": BackMsg{}} {
		_, cmd := m.Update(tuitest.Keys(key)[0])
		if cmd == nil || cmd() != want {
			t.Errorf("key %s: got %v, want %#v", key, cmd, want)
		}
	}
}
