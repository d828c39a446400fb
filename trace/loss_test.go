package trace

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace/synth"
)

func rule(netns, obj, text string, delta int64) topology.CounterDelta {
	return topology.CounterDelta{Netns: netns, Kind: topology.CounterRule, Object: obj, Text: text, Counter: "packets", Delta: delta}
}

func snmp(netns, name string, delta int64) topology.CounterDelta {
	return topology.CounterDelta{Netns: netns, Kind: topology.CounterSNMP, Counter: name, Delta: delta}
}

func window(ds ...topology.CounterDelta) *CounterWindow {
	// The synthetic mesh's connections start at 1700000000.
	w := &CounterWindow{Start: time.Unix(1700000000, 0), End: time.Unix(1700000002, 0), Deltas: map[string][]topology.CounterDelta{}, Read: map[string]bool{}}
	for _, d := range ds {
		node, netns, ok := strings.Cut(d.Netns, "/")
		if !ok {
			node, netns = "", d.Netns
		}
		d.Netns = netns
		k := NsKey(node, netns)
		w.Deltas[k] = append(w.Deltas[k], d)
	}
	for _, k := range []string{"/host", "/ingress_sbox", "/task", "/1-ovl", "node1/host"} {
		w.Read[k] = true
	}
	return w
}

func codes(cs []LossCause) []LossCode {
	var out []LossCode
	for _, c := range cs {
		out = append(out, c.Code)
	}
	return out
}

func TestCausesClassifyAndRank(t *testing.T) {
	host := []NsRef{{"", "host"}}
	for _, tc := range []struct {
		name  string
		scope []NsRef
		lost  int
		reset bool
		w     *CounterWindow
		want  []LossCode
		ev    string // the first cause's evidence contains
	}{
		{"a DROP rule", host, 4, false, window(
			rule("host", "filter INPUT #3", "-A INPUT -p udp -m udp --dport 4789 -j DROP", 4),
			rule("host", "filter INPUT #1", "-A INPUT -j ACCEPT", 9), // traffic, not a drop
		), []LossCode{LossRuleDrop}, "host filter INPUT rule 3 (-p udp -m udp --dport 4789 -j DROP) counted +4"},
		{"a DROP policy, an ACCEPT one is traffic", host, 2, false, window(
			topology.CounterDelta{Netns: "host", Kind: topology.CounterPolicy, Object: "filter FORWARD", Text: "DROP", Counter: "packets", Delta: 2},
			topology.CounterDelta{Netns: "host", Kind: topology.CounterPolicy, Object: "filter INPUT", Text: "ACCEPT", Counter: "packets", Delta: 50},
		), []LossCode{LossPolicyDrop}, "host filter FORWARD policy DROP counted +2"},
		{"nothing moved", host, 3, false, window(), nil, ""},
		{"a counter that went back is no cause", host, 3, false, window(snmp("host", "IpExtInNoRoutes", -5)), nil, ""},
		{"out of scope", host, 1, false, window(snmp("ingress_sbox", "TcpExtIPReversePathFilter", 1)), nil, ""},
		{"the exact count first, then the closest larger, then smaller", host, 3, false, window(
			rule("host", "filter INPUT #1", "-A INPUT -s 10.9.0.0/16 -j DROP", 1),
			snmp("host", "IpExtInNoRoutes", 40),
			snmp("host", "TcpExtIPReversePathFilter", 7),
			topology.CounterDelta{Netns: "host", Kind: topology.CounterConntrack, Counter: "insert_failed", Delta: 3},
		), []LossCode{LossConntrackInsert, LossRPFilter, LossNoRoute, LossRuleDrop}, "conntrack insert_failed +3"},
		{"a link's drops name a loss only when they count it exactly; rx_dropped is too common", host, 3, false, window(
			topology.CounterDelta{Netns: "host", Kind: topology.CounterLink, Object: "eth0", Counter: "tx_dropped", Delta: 2},
			topology.CounterDelta{Netns: "host", Kind: topology.CounterLink, Object: "vxlan0", Counter: "tx_dropped", Delta: 16},
			topology.CounterDelta{Netns: "host", Kind: topology.CounterLink, Object: "eth1", Counter: "rx_dropped", Delta: 3},
			topology.CounterDelta{Netns: "host", Kind: topology.CounterLink, Object: "eth2", Counter: "tx_errors", Delta: 3},
		), []LossCode{LossLinkDrop}, "eth2 tx_errors +3"},
		{"equal fit: the more specific code", host, 2, false, window(
			topology.CounterDelta{Netns: "host", Kind: topology.CounterLink, Object: "eth0", Counter: "tx_dropped", Delta: 2},
			rule("host", "filter FORWARD #2", "-A FORWARD -j REJECT --reject-with icmp-port-unreachable", 2),
		), []LossCode{LossRuleDrop, LossLinkDrop}, "REJECT"},
		{"a reset is no-listener only when the flow was refused", host, 1, false, window(snmp("host", "TcpOutRsts", 1)), nil, ""},
		{"refused", host, 1, true, window(snmp("host", "TcpOutRsts", 1)), []LossCode{LossNoListener}, "TcpOutRsts +1"},
		{"udp without a socket, with its ICMP", host, 2, false, window(snmp("host", "UdpNoPorts", 2), snmp("host", "IcmpOutDestUnreachs", 2)),
			[]LossCode{LossNoListener}, "UdpNoPorts +2 (with IcmpOutDestUnreachs +2)"},
		{"checksums, frag fails, forwarding off", host, 1, false, window(snmp("host", "TcpInCsumErrors", 1), snmp("host", "IpFragFails", 5), snmp("host", "IpInAddrErrors", 9)),
			[]LossCode{LossChecksum, LossNoRoute, LossMTU}, "TcpInCsumErrors +1"},
		{"lost unknown (doctor): by code", []NsRef{{"", "host"}, {"node1", "host"}}, 0, false, window(
			snmp("host", "UdpNoPorts", 1), rule("node1/host", "filter INPUT #1", "-A INPUT -p udp -m udp --dport 4789 -j DROP", 8),
		), []LossCode{LossRuleDrop, LossNoListener}, "node1/host filter INPUT rule 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Causes(tc.scope, tc.lost, tc.reset, tc.w, &Env{Nodes: []*Node{{Name: ""}}})
			if len(got) != len(tc.want) {
				t.Fatalf("causes %v, want %v", codes(got), tc.want)
			}
			for i := range got {
				if got[i].Code != tc.want[i] || got[i].Counted < 1 {
					t.Fatalf("causes %+v, want %v", got, tc.want)
				}
			}
			if len(got) > 0 && !strings.Contains(got[0].Evidence, tc.ev) {
				t.Errorf("evidence %q, want it to contain %q", got[0].Evidence, tc.ev)
			}
		})
	}
}

// TestCausesModel: a link's drops are mtu where its veth peer's MTU is
// another; ICMP unreachables are IPVS's where a service has no
// destination of weight > 0.
func TestCausesModel(t *testing.T) {
	m := &topology.Model{Namespaces: []*topology.Namespace{
		{NetnsRef: topology.NetnsRef{Name: "task"}, Links: []*topology.Link{{Name: "eth0", MTU: 1500, Peer: &topology.Peer{Netns: "1-ovl", Ifname: "veth1"}}}},
		{NetnsRef: topology.NetnsRef{Name: "1-ovl"}, Links: []*topology.Link{
			{Name: "veth1", MTU: 1450, Peer: &topology.Peer{Netns: "task", Ifname: "eth0"}},
			{Name: "veth2", MTU: 1450, Peer: &topology.Peer{Netns: "other", Ifname: "eth0"}},
		}},
		{NetnsRef: topology.NetnsRef{Name: "ingress_sbox"}, IPVS: &topology.IPVS{Available: true, Services: []*topology.IPVSService{
			{FWMark: 256, Dests: []*topology.IPVSDest{{Addr: netip.MustParseAddr("10.0.0.6"), Weight: 0}}},
		}}},
	}}
	env := &Env{Nodes: []*Node{{Model: m}}}
	link := func(ns, l, c string, d int64) topology.CounterDelta {
		return topology.CounterDelta{Netns: ns, Kind: topology.CounterLink, Object: l, Counter: c, Delta: d}
	}
	w := window(link("task", "eth0", "tx_dropped", 21), link("1-ovl", "veth2", "tx_dropped", 21), snmp("ingress_sbox", "IcmpOutDestUnreachs", 3))
	got := Causes([]NsRef{{"", "task"}, {"", "1-ovl"}}, 21, false, w, env)
	if len(got) != 2 || got[0].Code != LossMTU || got[1].Code != LossLinkDrop || !strings.Contains(got[0].Evidence, "MTU 1500, its peer's 1450") {
		t.Errorf("veth drops: %+v", got)
	}
	got = Causes([]NsRef{{"", "ingress_sbox"}}, 3, false, w, env)
	if len(got) != 1 || got[0].Code != LossIPVSNoDest {
		t.Errorf("ipvs: %+v", got)
	}
	m.Namespaces[2].IPVS.Services[0].Dests[0].Weight = 1
	if got = Causes([]NsRef{{"", "ingress_sbox"}}, 3, false, w, env); len(got) != 0 {
		t.Errorf("ICMP beside a usable IPVS service named: %+v", got)
	}
}

// stoppedSYNs correlates a connection of the synthetic mesh whose SYN was
// sent n times and seen up to point last only.
func stoppedSYNs(t *testing.T, port uint16, n, last int) []*Conn {
	t.Helper()
	cr := NewCorrelator(Options{ServerPorts: []uint16{8080, 80}})
	for i := range n {
		c := synth.HTTPConn(port, false, time.Duration(i)*time.Second, 1000)
		c.ID = uint16(100 + i)
		for _, f := range framesOf(t, c) {
			if f.Pkt.Flags == FlagSYN && int(f.Point) <= last {
				cr.Add(&f)
			}
		}
	}
	cr.Flush()
	return cr.Take()
}

// meshRoute is the synthetic mesh's route to the local task.
func meshRoute() []Route {
	steps := []Step{{0, DirOut}, {1, DirIn}, {2, DirOut}, {3, DirOut}, {4, DirIn}, {5, DirOut}, {6, DirIn}, {7, DirOut}, {8, DirIn}}
	return []Route{{Backend: synth.LocalTask.String(), Steps: steps}}
}

// TestAttributeLosses: two flows stopped at the same place share the
// counters; what moved elsewhere is not named; nothing moved says so;
// namespaces not read say "not collected".
func TestAttributeLosses(t *testing.T) {
	a := &Analysis{Points: PointsOf(synth.MeshPoints), Routes: meshRoute()}
	var flows []Flow
	for i, port := range []uint16{40000, 40001} {
		for _, c := range stoppedSYNs(t, port, 3, 4) {
			flows = append(flows, a.Flow(i+1, c, true))
		}
	}
	if len(flows) != 2 || flows[0].Stop == nil || flows[0].site() == nil {
		t.Fatalf("flows %+v", flows)
	}
	w := window(snmp("ingress_sbox", "TcpExtIPReversePathFilter", 6), snmp("host", "IpExtInNoRoutes", 6))
	AttributeLosses(flows, w, nil)
	l := flows[0].Loss
	if l == nil || l.Cause == nil {
		t.Fatalf("loss %+v", l)
	}
	if l.Cause.Code != LossRPFilter || l.Lost != 3 || l.LostThere != 6 || len(l.Also) != 0 || l.WindowMS != 2000 {
		t.Errorf("loss %+v", l)
	}
	want := "lost between ingress_sbox/eth1 in and ingress_sbox/eth0 out: consistent with ingress_sbox TcpExtIPReversePathFilter +6 (rp-filter) in 2s; 6 packet(s) lost there"
	if l.Summary != want {
		t.Errorf("summary\n%s\nwant\n%s", l.Summary, want)
	}

	AttributeLosses(flows, window(snmp("host", "IpExtInNoRoutes", 6)), nil)
	if l := flows[1].Loss; l.Cause != nil || !strings.Contains(l.Summary, "no drop counter of ingress_sbox moved in 2s") {
		t.Errorf("nothing moved there: %+v", l)
	}
	w = window()
	w.Read = nil
	AttributeLosses(flows, w, nil)
	if l := flows[1].Loss; l.Cause != nil || !strings.Contains(l.Summary, "the counters of ingress_sbox were not collected") {
		t.Errorf("not read: %+v", l)
	}
	// Lost packets last seen just before the capture ended may have been
	// in flight: no loss.
	w = window(snmp("ingress_sbox", "TcpExtIPReversePathFilter", 6))
	w.End = time.Unix(0, flows[0].Start.UnixNano()).Add(inFlight / 2)
	flows[0].Loss, flows[1].Loss = nil, nil
	AttributeLosses(flows, w, nil)
	if flows[0].Loss != nil || flows[1].Loss != nil {
		t.Errorf("cut off by the capture's end: %+v / %+v", flows[0].Loss, flows[1].Loss)
	}
	w.End = w.End.Add(inFlight)
	AttributeLosses(flows, w, nil)
	if flows[0].Loss == nil || flows[0].Loss.Cause == nil {
		t.Errorf("seen %s before the end: %+v", inFlight, flows[0].Loss)
	}
	flows[0].Loss = nil
	AttributeLosses(flows, nil, nil)
	if flows[0].Loss != nil {
		t.Errorf("a loss without counters: %+v", flows[0].Loss)
	}
}

// TestStopAtTaskAndReply: a request lost at the route's last hop is lost
// "at" it (the task's namespace only).
func TestStopAtTask(t *testing.T) {
	a := &Analysis{Points: PointsOf(synth.MeshPoints), Routes: meshRoute()}
	cs := stoppedSYNs(t, 40000, 2, 8)
	if len(cs) != 1 {
		t.Fatalf("%d conns", len(cs))
	}
	fl := a.Flow(1, cs[0], true)
	s := fl.site()
	if s == nil || s.at != "at 0a1b2c3d4e5f/eth0 in" || len(s.scope) != 1 || s.scope[0].Netns != "0a1b2c3d4e5f" || s.lost != 2 {
		t.Fatalf("site %+v", s)
	}
}

// TestStalled: an answered flow whose response was sent twice and seen
// only leaving the task (a frame its veth peer's MTU refuses) lost it
// between the task and the overlay; one sent once (cut off by the
// capture's end) is no loss.
func TestStalled(t *testing.T) {
	a := &Analysis{Points: PointsOf(synth.MeshPoints), Routes: meshRoute()}
	for _, resend := range []bool{true, false} {
		cr := NewCorrelator(Options{ServerPorts: []uint16{8080, 80}})
		var resp *Frame
		for _, f := range framesOf(t, synth.HTTPConn(40000, false, 0, 1000)) {
			if f.Pkt.Flags&FlagFIN != 0 || resp != nil && f.TS > resp.TS {
				break // the rest waits for the response
			}
			isResp := f.Pkt.Src.Addr() == synth.LocalTask && f.Pkt.Len > 0
			if isResp && f.Point != 8 {
				continue
			}
			cr.Add(&f)
			if isResp {
				r := f
				resp = &r
			}
		}
		if resp == nil {
			t.Fatal("no response in the synthetic connection")
		}
		if resend {
			r := *resp
			r.Pkt.ID += 50
			r.TS += int64(200 * time.Millisecond)
			cr.Add(&r)
		}
		cr.Flush()
		cs := cr.Take()
		if len(cs) != 1 {
			t.Fatalf("%d conns", len(cs))
		}
		fl := a.Flow(1, cs[0], true)
		if !fl.Answered || fl.Complete || fl.Stop != nil {
			t.Fatalf("flow answered %v complete %v stop %+v", fl.Answered, fl.Complete, fl.Stop)
		}
		s := fl.site()
		switch {
		case !resend && s != nil:
			t.Errorf("a response sent once is a loss: %+v", s)
		case resend && (s == nil || s.at != "between 0a1b2c3d4e5f/eth0 out and 1-ovl0000001/veth2a1b2c3 in" || s.lost != 2):
			t.Errorf("site %+v", s)
		}
	}
}

// TestRefusedIsNeverInFlight: a reset answered the flow, however close to
// the capture's end.
func TestRefusedIsNeverInFlight(t *testing.T) {
	w := window(snmp("task", "TcpOutRsts", 1))
	seen := w.End.Add(-time.Millisecond).UnixNano()
	for _, reset := range []bool{true, false} {
		fl := []Flow{{Stop: &Stop{site: &lossSite{at: "refused at task/eth0 out", scope: []NsRef{{"", "task"}}, lost: 1, reset: reset, seen: seen}}}}
		AttributeLosses(fl, w, nil)
		if got := fl[0].Loss != nil && fl[0].Loss.Cause != nil && fl[0].Loss.Cause.Code == LossNoListener; got != reset {
			t.Errorf("reset %v: loss %+v", reset, fl[0].Loss)
		}
	}
}
