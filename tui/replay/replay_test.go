package replay

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
	"github.com/meshtrace/meshtrace/tui/traceview"
)

func TestView(t *testing.T) {
	cases := []struct {
		name string
		keys []string
	}{
		{"start", nil},
		// three hops on: the DNAT happened between host/eth0 and the bridge.
		{"hop3", []string{"right", "right"}},
		// next packet: the SYN/ACK at the task.
		{"packet2", []string{"]"}},
		// next connection: the lost one; then back one hop (the ACK of #1).
		{"conn2", []string{"n"}},
		{"conn2-back", []string{"n", "left"}},
		{"end", []string{"end"}},
	}
	for _, c := range cases {
		for _, sz := range tuitest.Sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", c.name, sz[0], sz[1]), func(t *testing.T) {
				m := New().SetConns("probe.pcapng", tuitest.Conns(), "", nil)
				m = tuitest.Run(t, m, sz[0], sz[1], tuitest.Keys(c.keys...)...)
				tuitest.Golden(t, m.View())
			})
		}
	}
}

func TestStepping(t *testing.T) {
	m := New().SetSize(80, 24).SetConns("x", tuitest.Conns(), "", nil)
	press := func(keys ...string) {
		for _, k := range tuitest.Keys(keys...) {
			m, _ = m.Update(k)
		}
	}
	where := func() string {
		c, s, _ := m.Current()
		return fmt.Sprintf("#%d %s %s", c.ID, traceview.Where(s.Node, s.Netns, s.Ifname, ""), s.Dir)
	}
	press("]", "]")
	if got := where(); got != "#1 client/eth0 out" { // the ACK's first hop
		t.Fatalf("after two packets: %s", got)
	}
	press("[")
	if got := where(); got != "#1 09cd513d96a2/eth0 out" { // back to the SYN/ACK
		t.Fatalf("back one packet: %s", got)
	}
	press("n")
	if got := where(); got != "#2 client/eth0 out" {
		t.Fatalf("next connection: %s", got)
	}
	press("N")
	if got := where(); got != "#1 client/eth0 out" {
		t.Fatalf("previous connection: %s", got)
	}
	press("n", "n", "right", "right", "right", "right")
	if got := where(); got != "#2 ingress_sbox/eth1 in" { // stays on the last sighting
		t.Fatalf("at the end: %s", got)
	}
}

func TestPlayback(t *testing.T) {
	m := New().SetSize(80, 24).SetConns("x", tuitest.Conns(), "", nil)
	m, cmd := m.Update(tuitest.Keys("space")[0])
	if cmd == nil || !m.playing {
		t.Fatal("space did not start playing")
	}
	gen := m.gen
	m, _ = m.Update(tickMsg{gen: gen})
	if m.cur != 1 {
		t.Fatalf("a tick moved to %d", m.cur)
	}
	m, _ = m.Update(tuitest.Keys("space")[0])
	m, _ = m.Update(tickMsg{gen: gen})
	if m.cur != 1 {
		t.Fatal("a tick of a stopped play moved the cursor")
	}
}

func TestEmptyAndError(t *testing.T) {
	m := New().SetSize(80, 24).SetConns("bad.pcap", nil, "", errors.New("bad.pcap: packet 3: unexpected EOF"))
	v := tuitest.Plain(m.View())
	if !strings.Contains(v, "✗ bad.pcap: packet 3: unexpected EOF") || !strings.Contains(v, "no packet of a TCP/UDP") {
		t.Fatalf("%s", v)
	}
}
