package trace

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace/synth"
)

// framesOf decodes synthetic sightings the way a live capture does.
func framesOf(t testing.TB, conns ...synth.Conn) []Frame {
	t.Helper()
	var out []Frame
	for _, c := range conns {
		c.Emit(func(s synth.Sighting) {
			var f Frame
			if err := Decode(LinkEthernet, s.Frame, &f); err != nil {
				t.Fatalf("decode synthetic frame: %v", err)
			}
			f.Point, f.TS, f.Dir = int32(s.Point), s.TS, DirIn
			if s.Out {
				f.Dir = DirOut
			}
			f.Num = int32(len(out) + 1)
			out = append(out, f)
		})
	}
	return out
}

func TestCorrelateMesh(t *testing.T) {
	// Two overlapping connections: one served on node0, one across VXLAN
	// by node1, shuffled as sockets deliver them.
	frames := framesOf(t, synth.HTTPConn(40000, false, 0, 1000), synth.HTTPConn(40001, true, 50*time.Microsecond, 90000))
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(frames), func(i, j int) { frames[i], frames[j] = frames[j], frames[i] })
	conns := Correlate(frames, Options{})
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2", len(conns))
	}
	for i, want := range []struct {
		port uint16
		hops int
	}{{40000, 9}, {40001, 13}} {
		c := conns[i]
		if got := endpoint(c.Client.Src, c.Client.SPort); got != netip.AddrPortFrom(synth.ClientIP, want.port).String() {
			t.Errorf("conn %d: client %s", i, got)
		}
		if got := endpoint(c.Client.Dst, c.Client.DPort); got != "192.168.77.10:8080" {
			t.Errorf("conn %d: server %s", i, got)
		}
		if len(c.Packets) != 10 {
			t.Fatalf("conn %d: %d packets, want 10", i, len(c.Packets))
		}
		replies := 0
		for j, lp := range c.Packets {
			if len(lp.Frames) != want.hops {
				t.Errorf("conn %d packet %d (%s): %d sightings, want %d", i, j, FlagString(lp.Key.Proto, lp.Key.Flags), len(lp.Frames), want.hops)
			}
			if lp.Reply {
				replies++
			}
			for k := 1; k < len(lp.Frames); k++ {
				if lp.Frames[k].TS < lp.Frames[k-1].TS {
					t.Errorf("conn %d packet %d: sightings out of time order", i, j)
				}
			}
		}
		if replies != 5 {
			t.Errorf("conn %d: %d replies, want 5", i, replies)
		}
		if c.Packets[c.Request].Key.Flags != FlagSYN || c.Packets[c.Reply].Key.Flags != FlagSYN|FlagACK {
			t.Errorf("conn %d: first request %s, first reply %s", i,
				FlagString(ProtoTCP, c.Packets[c.Request].Key.Flags), FlagString(ProtoTCP, c.Packets[c.Reply].Key.Flags))
		}
		if !complete(c) {
			t.Errorf("conn %d not complete", i)
		}
	}
}

func TestCorrelatePortReuse(t *testing.T) {
	// The same client port twice, a new SYN (new ISN) each time: two
	// connections, although every tuple is shared.
	frames := framesOf(t, synth.HTTPConn(40000, false, 0, 1000), synth.HTTPConn(40000, false, time.Second, 777777))
	conns := Correlate(frames, Options{})
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2", len(conns))
	}
	for i, c := range conns {
		if len(c.Packets) != 10 {
			t.Errorf("conn %d: %d packets", i, len(c.Packets))
		}
	}
}

func TestCorrelateMidStream(t *testing.T) {
	// The capture missed the handshake: the flow is oriented by the
	// published port.
	frames := framesOf(t, synth.HTTPConn(40000, false, 0, 1000))
	var late []Frame
	for _, f := range frames {
		if f.Pkt.Flags&FlagSYN == 0 {
			late = append(late, f)
		}
	}
	// Start with a server packet to make orientation depend on ports.
	slices.SortStableFunc(late, func(a, b Frame) int {
		aReply, bReply := a.Pkt.SPort == 8080, b.Pkt.SPort == 8080
		switch {
		case aReply && !bReply:
			return -1
		case !aReply && bReply:
			return 1
		}
		return 0
	})
	for i := range late {
		late[i].TS = int64(i)
	}
	conns := Correlate(late, Options{ServerPorts: []uint16{8080, 80}})
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	c := conns[0]
	if c.Client.SPort != 40000 || c.Client.DPort != 8080 && c.Client.DPort != 0 {
		t.Errorf("client %+v", c.Client)
	}
	if !c.Packets[0].Reply {
		t.Errorf("the first packet (from the server) is not a reply")
	}
	if complete(c) {
		t.Errorf("a flow without its SYN is complete")
	}
}

func TestCorrelateUDP(t *testing.T) {
	// Two clients send the same datagram with IP ID 0 at the same time:
	// the key is equal, the tuples are not.
	mk := func(src string, sport uint16, at int64) []Frame {
		mac := synth.MAC(netip.MustParseAddr("10.0.0.2"))
		var out []Frame
		for i, h := range []struct {
			src, dst string
			pt       int32
		}{
			{src, "192.168.77.10:5353", 1},
			{"10.0.0.2:" + itoa(sport), "10.0.0.8:5353", 5},
		} {
			p := synth.Pkt{Src: netip.MustParseAddrPort(h.src), Dst: netip.MustParseAddrPort(h.dst), Proto: synth.UDP, Payload: []byte("query")}
			var f Frame
			if err := Decode(LinkEthernet, synth.Ether(mac, mac, p.IPv4()), &f); err != nil {
				t.Fatal(err)
			}
			f.Point, f.TS = h.pt, at+int64(i)*1000
			out = append(out, f)
			// the reply
			r := synth.Pkt{Src: netip.MustParseAddrPort(h.dst), Dst: netip.MustParseAddrPort(h.src), Proto: synth.UDP, Payload: []byte("answer")}
			var g Frame
			Decode(LinkEthernet, synth.Ether(mac, mac, r.IPv4()), &g)
			g.Point, g.TS = h.pt, at+100000-int64(i)*1000
			out = append(out, g)
		}
		return out
	}
	frames := append(mk("192.168.77.9:5000", 5000, 0), mk("192.168.77.20:5000", 5000, 10)...)
	// Both clients use source port 5000: SNAT keeps it, so the two
	// flows also share 10.0.0.2:5000 -> 10.0.0.8:5353 behind the
	// sandbox. conntrack would have changed one port; here the tuple
	// after SNAT links them, which is the known limit for UDP.
	conns := Correlate(frames, Options{ServerPorts: []uint16{5353}})
	if len(conns) == 0 {
		t.Fatal("no flow")
	}
	frames2 := append(mk("192.168.77.9:5000", 5000, 0), mk("192.168.77.20:5001", 5001, 10)...)
	conns = Correlate(frames2, Options{ServerPorts: []uint16{5353}})
	if len(conns) != 2 {
		t.Fatalf("%d flows, want 2", len(conns))
	}
	for _, c := range conns {
		if len(c.Packets) != 2 || c.Request < 0 || c.Reply < 0 || !complete(c) {
			t.Errorf("flow %+v: want one request and one reply", c.Client)
		}
		for _, lp := range c.Packets {
			if len(lp.Frames) != 2 {
				t.Errorf("flow %+v: packet seen %d times, want 2", c.Client, len(lp.Frames))
			}
		}
	}
}

func itoa(p uint16) string { return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[8:] }

func TestCorrelateLostPacket(t *testing.T) {
	// The SYN is dropped in the sandbox: its sightings stop at
	// ingress_sbox/eth1 and nothing answers.
	frames := framesOf(t, synth.HTTPConn(40000, false, 0, 1000))
	var kept []Frame
	for _, f := range frames {
		if f.Pkt.Flags == FlagSYN && f.Point <= 4 {
			kept = append(kept, f)
		}
	}
	conns := Correlate(kept, Options{})
	if len(conns) != 1 || len(conns[0].Packets) != 1 {
		t.Fatalf("want one flow with one packet, got %d", len(conns))
	}
	a := &Analysis{Points: PointsOf(synth.MeshPoints)}
	fl := a.Flows(conns)[0]
	if fl.Answered || fl.Complete {
		t.Errorf("answered %v complete %v", fl.Answered, fl.Complete)
	}
	if fl.Stop == nil || fl.Stop.Netns != "ingress_sbox" || fl.Stop.Ifname != "eth1" || fl.Stop.Dir != "in" {
		t.Fatalf("stop %+v, want ingress_sbox/eth1 in", fl.Stop)
	}
}

func TestConntrackMatch(t *testing.T) {
	frames := framesOf(t, synth.HTTPConn(40000, false, 0, 1000))
	conns := Correlate(frames, Options{})
	ap := netip.MustParseAddrPort
	tup := func(src, dst string) topology.Tuple {
		s, d := ap(src), ap(dst)
		return topology.Tuple{Src: s.Addr(), Dst: d.Addr(), SPort: s.Port(), DPort: d.Port()}
	}
	a := &Analysis{Points: PointsOf(synth.MeshPoints), Conntrack: map[string][]topology.Conntrack{
		"/host": {
			{Proto: "tcp", Orig: tup("192.168.77.9:40000", "192.168.77.10:8080"), Reply: tup("172.18.0.2:8080", "192.168.77.9:40000"), State: "TIME_WAIT"},
			{Proto: "tcp", Orig: tup("192.168.77.9:40001", "192.168.77.10:8080"), Reply: tup("172.18.0.2:8080", "192.168.77.9:40001")},
		},
		"/0a1b2c3d4e5f": {
			{Proto: "tcp", Orig: tup("10.0.0.2:40000", "10.0.0.6:8080"), Reply: tup("10.0.0.6:80", "10.0.0.2:40000")},
		},
	}}
	fl := a.Flows(conns)[0]
	if len(fl.Conntrack) != 2 {
		t.Fatalf("conntrack %+v, want the host's and the task's entry of this flow", fl.Conntrack)
	}
	if fl.Conntrack[0].Netns != "host" || fl.Conntrack[0].Reply != "172.18.0.2:8080 -> 192.168.77.9:40000" || fl.Conntrack[0].State != "TIME_WAIT" {
		t.Errorf("host entry %+v", fl.Conntrack[0])
	}
}

func TestCorrelateUDPLateSighting(t *testing.T) {
	// A socket hands over a sighting of the request after the answer has
	// come back to the client (one point's reader ran late): it is still
	// a hop of the request, not a flow of its own.
	mac := synth.MAC(netip.MustParseAddr("10.0.0.2"))
	frame := func(src, dst string, payload string, point int32, ts int64) *Frame {
		p := synth.Pkt{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Proto: synth.UDP, Payload: []byte(payload)}
		f := &Frame{}
		if err := Decode(LinkEthernet, synth.Ether(mac, mac, p.IPv4()), f); err != nil {
			t.Fatal(err)
		}
		f.Point, f.TS = point, ts
		return f
	}
	ms := int64(time.Millisecond)
	cr := NewCorrelator(Options{ServerPorts: []uint16{5353}})
	cr.Add(frame("192.168.77.9:5000", "192.168.77.10:5353", "query", 0, 1*ms))
	cr.Add(frame("10.0.0.2:5000", "10.0.0.8:5353", "query", 5, 3*ms))
	cr.Add(frame("10.0.0.8:5353", "10.0.0.2:5000", "answer", 5, 5*ms))
	cr.Add(frame("192.168.77.10:5353", "192.168.77.9:5000", "answer", 0, 7*ms))
	if cr.Completed() != 1 {
		t.Errorf("completed %d, want 1 once the answer is back", cr.Completed())
	}
	cr.Add(frame("10.0.0.2:5000", "10.0.0.8:5353", "query", 6, 4*ms)) // late
	// The next exchange on the same tuple, while the first lingers.
	cr.Add(frame("192.168.77.9:5000", "192.168.77.10:5353", "query2", 0, 20*ms))
	cr.Add(frame("10.0.0.2:5000", "10.0.0.8:5353", "query2", 5, 22*ms))
	cr.Add(frame("10.0.0.8:5353", "10.0.0.2:5000", "answer2", 5, 24*ms))
	cr.Add(frame("192.168.77.10:5353", "192.168.77.9:5000", "answer2", 0, 26*ms))
	cr.Flush()
	conns := cr.Take()
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2 (the late sighting is a hop of the first request; the second exchange is its own)", len(conns))
	}
	slices.SortFunc(conns, func(a, b *Conn) int { return int(a.seq - b.seq) })
	if n := len(conns[0].Packets[conns[0].Request].Frames); n != 3 {
		t.Errorf("the first request has %d sightings, want 3", n)
	}
	for i, c := range conns {
		if len(c.Packets) != 2 || !complete(c) {
			t.Errorf("exchange %d: %d packets, complete %v; want 2, complete", i+1, len(c.Packets), complete(c))
		}
	}
}
