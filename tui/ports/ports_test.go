package ports

import (
	"fmt"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
)

func TestView(t *testing.T) {
	cases := []struct {
		name, bundle, filter string
		keys                 []string
	}{
		{"modern", "modern", "", nil},
		{"docker112-second", "docker112", "", []string{"down"}},
		{"eastwest-vip", "eastwest", "", nil},
		{"filter-none", "modern", "9999", nil},
	}
	for _, c := range cases {
		for _, sz := range tuitest.Sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", c.name, sz[0], sz[1]), func(t *testing.T) {
				m := New().SetEntries(Build(tuitest.Bundle(t, c.bundle))).SetFilter(c.filter)
				m = tuitest.Run(t, m, sz[0], sz[1], tuitest.Keys(c.keys...)...)
				tuitest.Golden(t, m.View())
			})
		}
	}
}

func TestBuildFindsPortsAndVIPs(t *testing.T) {
	es := Build(tuitest.Bundle(t, "eastwest"))
	var vip *Entry
	for i := range es {
		if es[i].VIP() && es[i].Query.VIP.String() == "10.0.1.5" {
			vip = &es[i]
		}
	}
	if vip == nil {
		t.Fatalf("VIP 10.0.1.5 (marked in lb_k3m9xq2w7) not listed: %+v", es)
	}
	// front.1 calls api: it comes first, before api's own task.
	if len(vip.Clients) != 2 || vip.Clients[0] != "5f0c3a9e1d27" || vip.Query.Netns != "5f0c3a9e1d27" {
		t.Fatalf("clients %v, netns %q: want front's task first", vip.Clients, vip.Query.Netns)
	}
	// api's task on another node (10.0.1.7): the overlay's neighbour and
	// FDB tables were not collected, so that part, and the path, is unknown.
	if vip.Complete || !vip.Unknown || vip.FWMark != 258 || len(vip.Backends) != 2 {
		t.Fatalf("VIP path summary %+v", vip)
	}

	es = Build(tuitest.Bundle(t, "docker112"))
	var got []string
	for _, e := range es {
		if !e.VIP() {
			got = append(got, e.Title())
		}
	}
	if fmt.Sprint(got) != "[udp/5353 tcp/8080]" {
		t.Fatalf("published %v", got)
	}
}

func TestEnterOpens(t *testing.T) {
	m := New().SetEntries([]Entry{{Query: topology.Query{Proto: "tcp", Port: 80}}, {Query: topology.Query{Proto: "tcp", Port: 443}}}).SetSize(80, 24)
	for _, k := range tuitest.Keys("down") {
		m, _ = m.Update(k)
	}
	_, cmd := m.Update(tuitest.Keys("enter")[0])
	if cmd == nil {
		t.Fatal("enter returned no command")
	}
	om, ok := cmd().(OpenMsg)
	if !ok || om.Entry.Query.Port != 443 {
		t.Fatalf("enter gave %#v, want OpenMsg for tcp/443", cmd())
	}
}
