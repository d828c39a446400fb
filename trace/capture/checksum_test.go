package capture

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// csumFrame serializes Ethernet/IPv4/proto with right checksums; vxlan wraps
// it in Ethernet/IPv4/UDP 4789/VXLAN as a node's VTEP sends it.
func csumFrame(t testing.TB, proto string, vxlan bool) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0x42, 10, 0, 0, 5}, DstMAC: net.HardwareAddr{2, 0x42, 10, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 4242, SrcIP: net.IP{10, 0, 0, 5}, DstIP: net.IP{10, 0, 0, 2}}
	ls := []gopacket.SerializableLayer{eth, ip}
	switch proto {
	case "tcp":
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: 80, DstPort: 40000, Seq: 7, Ack: 9, ACK: true, PSH: true, Window: 500}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp, gopacket.Payload("HTTP/1.1 200 OK\r\n\r\nweb.2\n"))
	case "udp":
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: 53, DstPort: 40000}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp, gopacket.Payload(udpPayload))
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	inner := buf.Bytes()
	if !vxlan {
		return append([]byte(nil), inner...)
	}
	oip := &layers.IPv4{Version: 4, TTL: 64, Id: 1, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 168, 77, 11}, DstIP: net.IP{192, 168, 77, 10}}
	oudp := &layers.UDP{SrcPort: 51000, DstPort: 4789}
	oudp.SetNetworkLayerForChecksum(oip)
	out := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(out, opts,
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 11}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 10}, EthernetType: layers.EthernetTypeIPv4},
		oip, oudp, &layers.VXLAN{ValidIDFlag: true, VNI: 4096}, gopacket.Payload(inner))
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), out.Bytes()...)
}

// csumOffset is where the innermost L4 checksum is, from the frame's end.
func csumOffset(proto string) int {
	return map[string]int{"tcp": len("HTTP/1.1 200 OK\r\n\r\nweb.2\n") + 20 - 16, "udp": len(udpPayload) + 8 - 6}[proto]
}

func withField(f []byte, proto string, v uint16) []byte {
	g := append([]byte(nil), f...)
	binary.BigEndian.PutUint16(g[len(g)-csumOffset(proto):], v)
	return g
}

// groField is what tcp4_gro_complete writes, ~tcp_v4_check(len, saddr,
// daddr, 0): the pseudo-header's folded sum, computed here by hand from
// the innermost IPv4 header (at 14, or 64 inside VXLAN).
func groField(f []byte, vxlan bool) uint16 {
	ip := f[14:]
	if vxlan {
		ip = f[64:]
	}
	n := uint32(binary.BigEndian.Uint16(ip[2:])) - uint32(ip[0]&0x0f)*4
	sum := uint32(ip[9]) + n
	for i := 12; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// corrupt flips a bit of the innermost L4 checksum (the last layer's
// field, found from the end: the payloads above are fixed).
func corrupt(f []byte, proto string) []byte {
	g := append([]byte(nil), f...)
	// offset of the checksum from the end of the frame
	g[len(g)-csumOffset(proto)] ^= 0x01
	return g
}

func TestCheckL4(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		for _, vx := range []bool{false, true} {
			good := csumFrame(t, proto, vx)
			bad := corrupt(good, proto)
			name := proto
			if vx {
				name += " in vxlan"
			}
			c, ok := CheckL4(good, 0)
			if !ok || !c.Valid || c.NotReady || c.Proto != proto || c.VXLAN != vx {
				t.Errorf("%s: right checksum: %+v %v", name, c, ok)
			}
			b, ok := CheckL4(bad, 0)
			if !ok || b.Valid || b.Proto != proto {
				t.Errorf("%s: wrong checksum: %+v %v", name, b, ok)
			}
			if b.Packet != c.Packet || c.Packet == "" {
				t.Errorf("%s: the packet's name changes with its checksum: %q, %q", name, c.Packet, b.Packet)
			}
			// CHECKSUM_PARTIAL: never right or wrong, only not ready.
			if p, ok := CheckL4(bad, StatusCsumNotReady); !ok || !p.NotReady {
				t.Errorf("%s: not ready: %+v", name, p)
			}
			// TP_STATUS_CSUM_VALID alone is no proof (after VXLAN
			// decapsulation it is the outer checksum's): a damaged
			// packet stays wrong.
			if v, ok := CheckL4(bad, StatusCsumValid); !ok || v.Valid {
				t.Errorf("%s: damaged, with the outer checksum verified: %+v", name, v)
			}
			// GRO's merged packet: the pseudo-header's sum in the field,
			// verified by the kernel: right; without the kernel's word:
			// wrong.
			gro := withField(good, proto, groField(good, vx))
			if v, ok := CheckL4(gro, StatusCsumValid); !ok || !v.Valid {
				t.Errorf("%s: GRO-merged: %+v", name, v)
			}
			if v, ok := CheckL4(gro, 0); !ok || v.Valid {
				t.Errorf("%s: GRO's field without the kernel's verification: %+v", name, v)
			}
			// Cut short by the capture: not checked.
			if _, ok := CheckL4(good[:len(good)-3], 0); ok {
				t.Errorf("%s: a truncated frame was checked", name)
			}
		}
	}
	// A UDP checksum of 0 is none.
	f := csumFrame(t, "udp", false)
	f[len(f)-len(udpPayload)-2], f[len(f)-len(udpPayload)-1] = 0, 0
	if c, ok := CheckL4(f, 0); !ok || !c.Valid {
		t.Errorf("udp without checksum: %+v %v", c, ok)
	}
	// A fragment, ARP, garbage: not checked.
	frag := csumFrame(t, "tcp", false)
	frag[14+6] |= 0x20 // more fragments
	for name, f := range map[string][]byte{"fragment": frag, "empty": nil, "short": {1, 2, 3}, "arp": append(make([]byte, 12), 0x08, 0x06, 0, 1)} {
		if c, ok := CheckL4(f, 0); ok {
			t.Errorf("%s checked: %+v", name, c)
		}
	}
}

func FuzzCheckL4(f *testing.F) {
	for _, proto := range []string{"tcp", "udp"} {
		f.Add(csumFrame(f, proto, true), uint32(0))
		f.Add(csumFrame(f, proto, false), uint32(StatusCsumNotReady))
	}
	f.Fuzz(func(t *testing.T, b []byte, status uint32) {
		c, ok := CheckL4(b, status)
		if ok && (c.Packet == "" || (c.Proto != "tcp" && c.Proto != "udp")) {
			t.Fatalf("checked without a name or protocol: %+v", c)
		}
	})
}

// udpPayload is long enough that the frame needs no Ethernet padding.
const udpPayload = "dns.2 answers from node1, 28\n"
