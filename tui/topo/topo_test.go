package topo

import (
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
)

// Each case is a sequence of keys on a fixture bundle; the screen is
// compared with its golden file at 80x24 and 160x48.
func TestView(t *testing.T) {
	cases := []struct {
		name, bundle string
		filter       string
		keys         []string
	}{
		{"collapsed", "modern", "", nil},
		// cursor to the host, expand it: links, bridge ports, peers.
		{"expand-host", "modern", "", []string{"enter"}},
		// on the host's first veth (docker_gwbridge, eth0, veth9c2e4a1):
		// p jumps into the ingress sandbox, onto eth1.
		{"jump-peer", "modern", "", []string{"enter", "down", "down", "down", "p"}},
		// and b comes back.
		{"jump-back", "modern", "", []string{"enter", "down", "down", "down", "p", "b"}},
		{"overlay-vxlan", "docker112", "", []string{"e"}},
		{"filter-front", "eastwest", "front", []string{"enter"}},
		// the cursor skips group headers both ways; G goes to the end.
		{"end", "eastwest", "", []string{"G", "up", "up"}},
	}
	for _, c := range cases {
		for _, sz := range tuitest.Sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", c.name, sz[0], sz[1]), func(t *testing.T) {
				m := New().SetModel(tuitest.Bundle(t, c.bundle), delta.Set{}).SetFilter(c.filter)
				m = tuitest.Run(t, m, sz[0], sz[1], tuitest.Keys(c.keys...)...)
				tuitest.Golden(t, m.View())
			})
		}
	}
}

func TestJumpPeerLandsOnPeerLink(t *testing.T) {
	m := New().SetModel(tuitest.Bundle(t, "modern"), delta.Set{}).SetSize(80, 24)
	for _, k := range tuitest.Keys("enter", "down", "down", "down") {
		m, _ = m.Update(k)
	}
	r := m.rows[m.cursor]
	if r.link == nil || r.link.Name != "veth9c2e4a1" {
		t.Fatalf("cursor on %q, want the host's veth9c2e4a1", r.key)
	}
	m, _ = m.Update(tea.KeyPressMsg{Code: 'p', Text: "p"})
	r = m.rows[m.cursor]
	if r.key != "ingress_sbox/eth1" {
		t.Fatalf("after p the cursor is on %q, want ingress_sbox/eth1", r.key)
	}
	m, _ = m.Update(tea.KeyPressMsg{Code: 'b', Text: "b"})
	if r := m.rows[m.cursor]; r.key != "host/veth9c2e4a1" {
		t.Fatalf("after b the cursor is on %q, want host/veth9c2e4a1", r.key)
	}
}

func TestFilterCountsAndKeepsGroups(t *testing.T) {
	m := New().SetModel(tuitest.Bundle(t, "eastwest"), delta.Set{}).SetSize(80, 24).SetFilter("api")
	v := tuitest.Plain(m.View())
	if !strings.Contains(v, "TASKS (1 of 2)") || strings.Contains(v, "front.1") {
		t.Fatalf("filter api should leave one of two tasks:\n%s", v)
	}
	m = m.SetFilter("no-such-thing")
	if v := tuitest.Plain(m.View()); !strings.Contains(v, "no namespace matches") {
		t.Fatalf("empty filter result not said:\n%s", v)
	}
}

func TestChangedNamespaceMarked(t *testing.T) {
	old := tuitest.Bundle(t, "modern")
	cur := tuitest.Bundle(t, "modern")
	sb := cur.Lookup("ingress_sbox")
	sb.IPVS.Services[0].Dests = sb.IPVS.Services[0].Dests[:1]
	m := New().SetModel(cur, delta.Compare(old, cur)).SetSize(80, 24)
	v := tuitest.Plain(m.View())
	if !strings.Contains(v, "*[+] ingress_sbox") {
		t.Fatalf("the sandbox lost a backend but is not marked:\n%s", v)
	}
	if strings.Contains(v, "*[+] host") {
		t.Fatalf("host marked although unchanged:\n%s", v)
	}
}
