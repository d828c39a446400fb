package capture

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// TestWatchChecksums: between two namespaces over a veth, what a socket
// sends crosses as CHECKSUM_PARTIAL (veth offloads the checksum) and is
// recorded as not ready, never as wrong; a complete frame with a wrong
// UDP checksum (written whole to an AF_PACKET socket, as a broken NIC
// would deliver it) is recorded as wrong, the same frame with a right one
// as right.
func TestWatchChecksums(t *testing.T) {
	a, b := testutil.Netns(t), testutil.Netns(t)
	pa, pb := netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("10.9.0.2/24")
	var hwB net.HardwareAddr
	err := netnsx.Do(a, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "v0"}, PeerName: "v1"}); err != nil {
			return err
		}
		v1, err := netlink.LinkByName("v1")
		if err != nil {
			return err
		}
		hwB = v1.Attrs().HardwareAddr
		fd, err := unix.Open(b, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := netlink.LinkSetNsFd(v1, fd); err != nil {
			return err
		}
		return addrUp("v0", pa)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := netnsx.Do(b, func() error { return addrUp("v1", pb) }); err != nil {
		t.Fatal(err)
	}

	w, err := WatchChecksums([]trace.Point{{Netns: "b", Ifname: "v1", Path: b}}, kmod.Allow{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			w.Stop()
		}
	}()
	// A socket's datagram: CHECKSUM_PARTIAL across the veth.
	testutil.SendUDP(t, a, netip.AddrPortFrom(pb.Addr(), 9))
	// Whole frames, complete: one right, one wrong.
	frame := func(sport uint16, damage bool) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: hwB, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: pa.Addr().AsSlice(), DstIP: pb.Addr().AsSlice()}
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 9}
		udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload("a frame from a NIC, 30 bytes!\n")); err != nil {
			t.Fatal(err)
		}
		f := buf.Bytes()
		if damage {
			f[14+20+6] ^= 0x10
		}
		return f
	}
	err = netnsx.Do(a, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName("v0")
		if err != nil {
			return err
		}
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], hwB)
		for _, f := range [][]byte{frame(1111, false), frame(2222, true)} {
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The frames are in the receiver's queue once sent; give the reader
	// its poll interval to take them.
	for range 200 { // up to 10s on a loaded machine
		time.Sleep(50 * time.Millisecond)
		w.mu.Lock()
		n := len(w.sightings)
		w.mu.Unlock()
		if n >= 3 {
			break
		}
	}
	got := w.Stop()
	stopped = true
	by := map[string]topology.ChecksumSighting{}
	for _, s := range got {
		if s.Hop != "b/v1" || s.Netns != "b" || s.Proto != "udp" {
			t.Errorf("sighting %+v: want udp at b/v1", s)
		}
		switch {
		case s.NotReady:
			by["partial"] = s
		case s.Valid:
			by["right"] = s
		default:
			by["wrong"] = s
		}
	}
	for what, port := range map[string]string{"right": ":1111>", "wrong": ":2222>"} {
		if s, ok := by[what]; !ok || !strings.Contains(s.Packet, port) {
			t.Errorf("no %s checksum seen from port %s: %+v", what, port, got)
		}
	}
	if _, ok := by["partial"]; !ok {
		t.Errorf("the socket's datagram was not seen as not ready (CHECKSUM_PARTIAL): %+v", got)
	}
	if bad := topology.BadChecksums(got); len(bad) != 1 || bad[0].Packets != 1 {
		t.Errorf("bad checksums %+v, want the one damaged frame", bad)
	}
}

// addrUp gives the link its address and sets it up.
func addrUp(name string, p netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}); err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return netlink.LinkSetUp(l)
}
