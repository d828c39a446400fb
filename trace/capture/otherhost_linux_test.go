package capture

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/trace"
)

// TestOtherHostFrames: a frame addressed to another MAC (what a bridge
// floods to every port) reaches an interface that is no bridge port; the
// IP stack drops it there. A terminal point's inbound socket must not see
// it, a bridge port's must, and both see a frame addressed to the
// interface.
func TestOtherHostFrames(t *testing.T) {
	a, b := testutil.Netns(t), testutil.Netns(t)
	bAddr := netip.MustParseAddr("10.251.7.2")
	var bMAC net.HardwareAddr
	err := netnsx.Do(a, func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "oh0"}, PeerName: "oh1"}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("oh1")
		if err != nil {
			return err
		}
		h, err := netns.GetFromPath(b)
		if err != nil {
			return err
		}
		defer h.Close()
		if err := netlink.LinkSetNsFd(peer, int(h)); err != nil {
			return err
		}
		l, err := netlink.LinkByName("oh0")
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("10.251.7.1/30")
		if err := netlink.AddrAdd(l, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatalf("netns %s: veth: %v", a, err)
	}
	err = netnsx.Do(b, func() error {
		l, err := netlink.LinkByName("oh1")
		if err != nil {
			return err
		}
		bMAC = l.Attrs().HardwareAddr
		addr, _ := netlink.ParseAddr(bAddr.String() + "/30")
		if err := netlink.AddrAdd(l, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatalf("netns %s: veth peer: %v", b, err)
	}
	neigh := func(mac net.HardwareAddr) {
		t.Helper()
		err := netnsx.Do(a, func() error {
			l, err := netlink.LinkByName("oh0")
			if err != nil {
				return err
			}
			return netlink.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, State: netlink.NUD_PERMANENT,
				IP: bAddr.AsSlice(), HardwareAddr: mac, Family: netlink.FAMILY_V4})
		})
		if err != nil {
			t.Fatalf("netns %s: neighbour %s: %v", a, bAddr, err)
		}
	}
	spec := trace.FilterSpec{Proto: trace.ProtoUDP, Ports: []uint16{9999}}
	open := func(terminal bool) Socket {
		t.Helper()
		prog, err := Assemble(spec, trace.DirIn, terminal)
		if err != nil {
			t.Fatal(err)
		}
		s, err := AFPacket{}.Open(trace.Point{Netns: "b", Ifname: "oh1", Path: b, Terminal: terminal}, trace.DirIn, prog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	seen := func(s Socket) int {
		n := 0
		for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
			_, _, err := s.Next()
			if errors.Is(err, ErrTimeout) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	send := func() { testutil.SendUDP(t, a, netip.AddrPortFrom(bAddr, 9999)) }

	// Addressed to another host.
	term, port := open(true), open(false)
	neigh(net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99})
	send()
	if n := seen(term); n != 0 {
		t.Errorf("a terminal interface's inbound socket kept %d frame(s) addressed to another MAC", n)
	}
	if n := seen(port); n != 1 {
		t.Errorf("a bridge port's inbound socket kept %d frame(s) addressed to another MAC, want 1", n)
	}
	// Addressed to the interface.
	neigh(bMAC)
	send()
	if n := seen(term); n != 1 {
		t.Errorf("a terminal interface's inbound socket kept %d frame(s) addressed to it, want 1", n)
	}
	if n := seen(port); n != 1 {
		t.Errorf("a bridge port's inbound socket kept %d frame(s) addressed to it, want 1", n)
	}
}

// TestAFPacketDropsAfterClose: a ring too small for a burst drops
// packets, and the socket says how many once it is closed (trace reads
// the drops after closing its sockets: they read as 0 before, whatever
// the kernel dropped).
func TestAFPacketDropsAfterClose(t *testing.T) {
	ns := testutil.Netns(t)
	err := netnsx.Do(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		t.Fatalf("netns %s: lo up: %v", ns, err)
	}
	prog, err := Assemble(trace.FilterSpec{Proto: trace.ProtoUDP, Ports: []uint16{9999}}, trace.DirIn, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := AFPacket{BlockSize: 4096, Blocks: 1}.Open(trace.Point{Netns: "lo", Ifname: "lo", Path: ns, Terminal: true}, trace.DirIn, prog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const burst = 500 // one 4 KiB block holds a few dozen
	err = netnsx.Do(ns, func() error {
		c, err := net.Dial("udp4", "127.0.0.1:9999")
		if err != nil {
			return err
		}
		defer c.Close()
		for range burst {
			c.Write([]byte("x")) // nobody listens: ECONNREFUSED now and then
		}
		return nil
	})
	if err != nil {
		t.Fatalf("netns %s: udp: %v", ns, err)
	}
	s.Close()
	if d := s.Drops(); d == 0 {
		t.Errorf("no drops reported after %d datagrams into a one-block ring, read after Close", burst)
	}
}
