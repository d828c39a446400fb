package fault

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// vxlanFrame is an Ethernet frame: IPv4/UDP to dport carrying VXLAN with
// an inner IPv4 packet of protocol proto (TCP or UDP, checksum sum).
func vxlanFrame(t *testing.T, dport uint16, proto layers.IPProtocol, sum uint16, fragOff uint16) []byte {
	return vxlanFrameCsum(t, dport, proto, sum, fragOff, false)
}

// vxlanFrameCsum is vxlanFrame, with the outer UDP checksum computed when
// outerSum is set (VXLAN's udpcsum), 0 otherwise.
func vxlanFrameCsum(t *testing.T, dport uint16, proto layers.IPProtocol, sum uint16, fragOff uint16, outerSum bool) []byte {
	t.Helper()
	inner := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0x42, 10, 0, 0, 2}, DstMAC: net.HardwareAddr{2, 0x42, 10, 0, 0, 7}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.IP{10, 0, 0, 2}, DstIP: net.IP{10, 0, 0, 7}, FragOffset: fragOff}
	var l4 gopacket.SerializableLayer
	switch proto {
	case layers.IPProtocolTCP:
		l4 = &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Window: 64240, Checksum: sum}
	default:
		l4 = &layers.UDP{SrcPort: 40000, DstPort: 53, Checksum: sum}
	}
	if err := gopacket.SerializeLayers(inner, gopacket.SerializeOptions{FixLengths: true}, eth, ip, l4, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	outer := gopacket.NewSerializeBuffer()
	oip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 168, 77, 11}, DstIP: net.IP{192, 168, 77, 10}}
	oudp := &layers.UDP{SrcPort: 51000, DstPort: layers.UDPPort(dport)}
	oudp.SetNetworkLayerForChecksum(oip)
	err := gopacket.SerializeLayers(outer, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: outerSum},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		oip, oudp,
		&layers.VXLAN{ValidIDFlag: true, VNI: 4096},
		gopacket.Payload(inner.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return outer.Bytes()
}

// innerSumAt is where the inner L4 checksum of vxlanFrame's frames is.
func innerSumAt(proto layers.IPProtocol) int {
	off := 14 + 20 + 8 + 8 + 14 + 20
	if proto == layers.IPProtocolTCP {
		return off + 16
	}
	return off + 6
}

// The program, run by the kernel on crafted frames (BPF_PROG_TEST_RUN):
// it changes the inner TCP/UDP checksum of VXLAN frames, and nothing else
// of them or of any other frame.
func TestBadChecksumProgram(t *testing.T) {
	testutil.NeedRoot(t)
	prog, err := loadBadChecksum()
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	tcp, udp := layers.IPProtocolTCP, layers.IPProtocolUDP
	for _, tc := range []struct {
		name    string
		frame   []byte
		sumAt   int    // -1: the frame must pass unchanged
		wantSum uint16 // the corrupted checksum
	}{
		{"tcp", vxlanFrame(t, 4789, tcp, 0x1234, 0), innerSumAt(tcp), 0x1334},
		{"tcp, outer udp checksum", vxlanFrameCsum(t, 4789, tcp, 0x1234, 0, true), innerSumAt(tcp), 0x1334},
		{"udp, outer udp checksum", vxlanFrameCsum(t, 4789, udp, 0x0100, 0, true), innerSumAt(udp), 0x0300},
		{"udp", vxlanFrame(t, 4789, udp, 0xabcd, 0), innerSumAt(udp), 0xaacd},
		{"udp never becomes no checksum", vxlanFrame(t, 4789, udp, 0x0100, 0), innerSumAt(udp), 0x0300},
		{"udp without a checksum", vxlanFrame(t, 4789, udp, 0, 0), -1, 0},
		{"another udp port", vxlanFrame(t, 4790, tcp, 0x1234, 0), -1, 0},
		{"an inner fragment", vxlanFrame(t, 4789, tcp, 0x1234, 185), -1, 0},
		{"arp", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, make([]byte, 46)...), -1, 0},
	} {
		out := make([]byte, len(tc.frame))
		ret, err := prog.Run(&ebpf.RunOptions{Data: tc.frame, DataOut: out})
		if err != nil || ret != 0 {
			t.Errorf("%s: run: %d %v", tc.name, ret, err)
			continue
		}
		want := bytes.Clone(tc.frame)
		if tc.sumAt >= 0 {
			binary.BigEndian.PutUint16(want[tc.sumAt:], tc.wantSum)
		}
		// The outer checksum is the one thing allowed to differ beyond
		// the inner one, and only so as to stay right.
		const outerSumAt = 14 + 20 + 6
		outerBefore := binary.BigEndian.Uint16(tc.frame[outerSumAt:])
		if outerBefore != 0 && !udpChecksumOK(tc.frame) {
			t.Fatalf("%s: the crafted frame's outer UDP checksum is wrong", tc.name)
		}
		if outerBefore != 0 && len(out) == len(want) {
			copy(want[outerSumAt:outerSumAt+2], out[outerSumAt:outerSumAt+2])
			if !udpChecksumOK(out) {
				t.Errorf("%s: the outer UDP checksum no longer verifies", tc.name)
			}
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s: frame\n%x\nwant\n%x", tc.name, out, want)
		}
	}
}

// udpChecksumOK verifies the outer UDP checksum of an Ethernet/IPv4/UDP
// frame (IHL 5): the one's complement sum over the pseudo-header and the
// datagram is 0xffff.
func udpChecksumOK(f []byte) bool {
	ip, udp := f[14:34], f[34:]
	n := int(binary.BigEndian.Uint16(udp[4:]))
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(ip[12:20])
	sum += 17 + uint32(n)
	add(udp[:n])
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}
