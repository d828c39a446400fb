// Package synth builds packets byte by byte (Ethernet, Linux cooked
// capture v1/v2, IPv4, TCP, UDP, VXLAN) with correct checksums, for tests,
// fuzz seeds and the replay benchmark.
package synth

import (
	"encoding/binary"
	"net/netip"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

// Protocols.
const (
	TCP = 6
	UDP = 17
)

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
)

// Pkt is one IPv4 TCP or UDP packet.
type Pkt struct {
	Src, Dst netip.AddrPort
	Proto    uint8
	ID       uint16
	TTL      uint8 // 0 = 64
	Seq, Ack uint32
	Flags    uint8
	Payload  []byte
}

// IPv4 renders the packet with its IPv4 header (DF set) and checksums.
func (p Pkt) IPv4() []byte {
	var l4 []byte
	if p.Proto == UDP {
		l4 = make([]byte, 8+len(p.Payload))
		binary.BigEndian.PutUint16(l4[0:], p.Src.Port())
		binary.BigEndian.PutUint16(l4[2:], p.Dst.Port())
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		copy(l4[8:], p.Payload)
	} else {
		l4 = make([]byte, 20+len(p.Payload))
		binary.BigEndian.PutUint16(l4[0:], p.Src.Port())
		binary.BigEndian.PutUint16(l4[2:], p.Dst.Port())
		binary.BigEndian.PutUint32(l4[4:], p.Seq)
		binary.BigEndian.PutUint32(l4[8:], p.Ack)
		l4[12] = 5 << 4
		l4[13] = p.Flags
		binary.BigEndian.PutUint16(l4[14:], 64240)
		copy(l4[20:], p.Payload)
	}
	src, dst := p.Src.Addr().As4(), p.Dst.Addr().As4()
	// Pseudo-header checksum.
	ph := make([]byte, 12, 12+len(l4))
	copy(ph[0:], src[:])
	copy(ph[4:], dst[:])
	ph[9] = p.Proto
	binary.BigEndian.PutUint16(ph[10:], uint16(len(l4)))
	off := 16
	if p.Proto == UDP {
		off = 6
	}
	binary.BigEndian.PutUint16(l4[off:], checksum(append(ph, l4...)))

	ip := make([]byte, 20+len(l4))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:], p.ID)
	ip[6] = 0x40 // DF
	ip[8] = p.TTL
	if ip[8] == 0 {
		ip[8] = 64
	}
	ip[9] = p.Proto
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:20]))
	copy(ip[20:], l4)
	return ip
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// MAC is the MAC Docker derives from an IPv4 address (02:42 + address).
func MAC(a netip.Addr) [6]byte { return addrplan.HWAddr(a) }

// Ether wraps an IPv4 packet in an Ethernet II header.
func Ether(src, dst [6]byte, ip []byte) []byte {
	f := make([]byte, 14+len(ip))
	copy(f[0:], dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	copy(f[14:], ip)
	return f
}

// VXLAN wraps an inner Ethernet frame in IPv4/UDP/VXLAN from one VTEP to
// another, the way the kernel's vxlan device does (source port from the
// inner flow, DF clear, ID 0... here: the given ID).
func VXLAN(outerSrc, outerDst netip.Addr, sport uint16, vni uint32, id uint16, inner []byte) []byte {
	payload := make([]byte, 8+len(inner))
	payload[0] = 0x08
	payload[4], payload[5], payload[6] = byte(vni>>16), byte(vni>>8), byte(vni)
	copy(payload[8:], inner)
	return Pkt{Src: netip.AddrPortFrom(outerSrc, sport), Dst: netip.AddrPortFrom(outerDst, 4789), Proto: UDP, ID: id, Payload: payload}.IPv4()
}

// SLL wraps an IPv4 packet in a Linux cooked v1 header (tcpdump -i any).
// pkttype 4 is PACKET_OUTGOING, 0 PACKET_HOST.
func SLL(pkttype uint16, mac [6]byte, ip []byte) []byte {
	f := make([]byte, 16+len(ip))
	binary.BigEndian.PutUint16(f[0:], pkttype)
	binary.BigEndian.PutUint16(f[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(f[4:], 6)
	copy(f[6:], mac[:])
	binary.BigEndian.PutUint16(f[14:], 0x0800)
	copy(f[16:], ip)
	return f
}

// SLL2 wraps an IPv4 packet in a Linux cooked v2 header.
func SLL2(pkttype uint8, ifindex uint32, mac [6]byte, ip []byte) []byte {
	f := make([]byte, 20+len(ip))
	binary.BigEndian.PutUint16(f[0:], 0x0800)
	binary.BigEndian.PutUint32(f[4:], ifindex)
	binary.BigEndian.PutUint16(f[8:], 1)
	f[10] = pkttype
	f[11] = 6
	copy(f[12:], mac[:])
	copy(f[20:], ip)
	return f
}
