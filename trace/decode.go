package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Link types (LINKTYPE_* of pcap and pcapng) the decoder understands.
const (
	LinkNull     = 0   // BSD loopback: 4-byte address family
	LinkEthernet = 1   // Ethernet II (veth, bridge, vxlan devices)
	LinkRaw      = 101 // raw IPv4/IPv6
	LinkSLL      = 113 // Linux cooked capture v1 (tcpdump -i any, old)
	LinkIPv4     = 228 // raw IPv4
	LinkSLL2     = 276 // Linux cooked capture v2 (tcpdump -i any, libpcap >= 1.10)
)

// IP protocol numbers.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// VXLANPort is the IANA VXLAN port the overlay driver uses.
const VXLANPort = 4789

// hashBytes is how much of a payload goes into a packet's key: enough to
// tell datagrams apart, little enough to survive a short snap length.
const hashBytes = 64

// IP4 is an IPv4 address, compact enough to keep a million of them.
type IP4 [4]byte

// Addr converts to netip.
func (a IP4) Addr() netip.Addr { return netip.AddrFrom4(a) }

func (a IP4) String() string { return a.Addr().String() }

// IP4Of converts an IPv4 netip.Addr (the zero IP4 otherwise).
func IP4Of(a netip.Addr) IP4 {
	if a.Is4() || a.Is4In6() {
		return a.Unmap().As4()
	}
	return IP4{}
}

// Packet is what correlation looks at in one IPv4 packet: the fields NAT
// leaves alone (ID, TCP seq/ack/flags, payload), and the ones it rewrites
// (addresses and ports).
type Packet struct {
	Src, Dst     IP4
	SPort, DPort uint16
	ID           uint16
	Proto        uint8
	TTL          uint8
	Flags        uint8 // TCP flags
	Seq, Ack     uint32
	Len          uint16 // transport payload length, from the IP header
	Hash         uint64 // FNV-1a of the payload's first hashBytes bytes and Len
}

// Encap is the outer header of a VXLAN-encapsulated frame.
type Encap struct {
	Src, Dst     IP4
	SPort, DPort uint16
	VNI          uint32
}

// Dir is the direction a frame crossed its interface.
type Dir uint8

const (
	DirUnknown Dir = iota
	DirIn
	DirOut
)

func (d Dir) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return "?"
}

// Frame is one captured frame: where and when it was seen and what it
// carried. VXLAN frames carry the inner packet in Pkt and the outer
// header in Outer.
type Frame struct {
	TS      int64 // unix nanoseconds
	Point   int32 // index into the capture's points
	Num     int32 // 1-based packet number in its source
	Ifindex int32 // SLL2 interface index, 0 unknown
	Dir     Dir
	VXLAN   bool
	Pkt     Packet
	Outer   Encap
	SrcMAC  [6]byte
	DstMAC  [6]byte
	// IPLen is the IPv4 total length of Pkt's packet (the inner one of
	// a VXLAN frame): what ESP's length is worked out from (esp.go).
	IPLen uint16
	// ESP is the ESP header of an ESP packet (Pkt.Proto ProtoESP, Pkt's
	// addresses the outer ones); zero otherwise.
	ESP ESP
}

// Errors for frames that carry nothing to correlate. They are not file
// errors: a capture holds ARP, IPv6 and other traffic too.
var (
	ErrNotIPv4     = errors.New("not an IPv4 packet")
	ErrNotTCPUDP   = errors.New("not TCP or UDP")
	ErrFragment    = errors.New("non-first IPv4 fragment")
	ErrShort       = errors.New("truncated packet")
	ErrUnsupported = errors.New("unsupported link type")
)

// LinkSupported reports whether Decode understands a link type.
func LinkSupported(link int) bool {
	switch link {
	case LinkNull, LinkEthernet, LinkRaw, LinkSLL, LinkIPv4, LinkSLL2:
		return true
	}
	return false
}

// Decode fills f (except TS, Point and Num) from one frame of the given
// link type. It never panics on any input; frames without an IPv4 TCP or
// UDP packet return one of the errors above.
func Decode(link int, data []byte, f *Frame) error {
	f.VXLAN, f.Outer, f.Ifindex = false, Encap{}, 0
	f.SrcMAC, f.DstMAC = [6]byte{}, [6]byte{}
	f.ESP = ESP{}
	switch link {
	case LinkEthernet:
		return decodeEther(data, f, false)
	case LinkSLL:
		if len(data) < 16 {
			return ErrShort
		}
		f.Dir = pktTypeDir(binary.BigEndian.Uint16(data[0:2]))
		if binary.BigEndian.Uint16(data[2:4]) == 1 && binary.BigEndian.Uint16(data[4:6]) == 6 {
			copy(f.SrcMAC[:], data[6:12])
		}
		if binary.BigEndian.Uint16(data[14:16]) != 0x0800 {
			return ErrNotIPv4
		}
		return decodeIPv4(data[16:], f, false)
	case LinkSLL2:
		if len(data) < 20 {
			return ErrShort
		}
		f.Ifindex = int32(binary.BigEndian.Uint32(data[4:8]))
		f.Dir = pktTypeDir(uint16(data[10]))
		if binary.BigEndian.Uint16(data[8:10]) == 1 && data[11] == 6 {
			copy(f.SrcMAC[:], data[12:18])
		}
		if binary.BigEndian.Uint16(data[0:2]) != 0x0800 {
			return ErrNotIPv4
		}
		return decodeIPv4(data[20:], f, false)
	case LinkRaw, LinkIPv4:
		return decodeIPv4(data, f, false)
	case LinkNull:
		if len(data) < 4 {
			return ErrShort
		}
		// The family is in the capturing host's byte order: 2 is AF_INET
		// either way round.
		if fam := binary.LittleEndian.Uint32(data[0:4]); fam != 2 && fam != 2<<24 {
			return ErrNotIPv4
		}
		return decodeIPv4(data[4:], f, false)
	}
	return fmt.Errorf("%w %d", ErrUnsupported, link)
}

// pktTypeDir maps a sockaddr_ll packet type to a direction:
// PACKET_OUTGOING (4) is out, anything else was received.
func pktTypeDir(t uint16) Dir {
	if t == 4 {
		return DirOut
	}
	return DirIn
}

func decodeEther(data []byte, f *Frame, inner bool) error {
	if len(data) < 14 {
		return ErrShort
	}
	if !inner {
		copy(f.DstMAC[:], data[0:6])
		copy(f.SrcMAC[:], data[6:12])
	}
	et := binary.BigEndian.Uint16(data[12:14])
	off := 14
	for et == 0x8100 || et == 0x88a8 { // VLAN tags
		if len(data) < off+4 {
			return ErrShort
		}
		et = binary.BigEndian.Uint16(data[off+2 : off+4])
		off += 4
	}
	if et != 0x0800 {
		return ErrNotIPv4
	}
	return decodeIPv4(data[off:], f, inner)
}

func decodeIPv4(data []byte, f *Frame, inner bool) error {
	if len(data) < 20 {
		return ErrShort
	}
	if data[0]>>4 != 4 {
		return ErrNotIPv4
	}
	ihl := int(data[0]&0x0f) * 4
	if ihl < 20 || len(data) < ihl {
		return ErrShort
	}
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if total == 0 { // TSO super packets may carry 0
		total = len(data)
	}
	if total < ihl {
		return ErrShort
	}
	if binary.BigEndian.Uint16(data[6:8])&0x1fff != 0 {
		return ErrFragment
	}
	p := &f.Pkt
	proto := data[9]
	if proto != ProtoTCP && proto != ProtoUDP {
		if proto == ProtoESP && !inner {
			return decodeESP(data, ihl, total, f)
		}
		return ErrNotTCPUDP
	}
	var src, dst IP4
	copy(src[:], data[12:16])
	copy(dst[:], data[16:20])
	id := binary.BigEndian.Uint16(data[4:6])
	ttl := data[8]
	l4 := data[ihl:]
	l4len := total - ihl // from the header: captures may be truncated or padded
	if len(l4) > l4len {
		l4 = l4[:l4len]
	}
	if proto == ProtoUDP {
		if len(l4) < 8 {
			return ErrShort
		}
		sport, dport := binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		if !inner && dport == VXLANPort && len(l4) >= 16+14 && l4[8]&0x08 != 0 {
			if err := decodeEther(l4[16:], f, true); err == nil {
				f.VXLAN = true
				f.Outer = Encap{Src: src, Dst: dst, SPort: sport, DPort: dport,
					VNI: uint32(l4[12])<<16 | uint32(l4[13])<<8 | uint32(l4[14])}
				return nil
			}
			// Not a TCP/UDP inner frame: treat it as plain UDP.
		}
		*p = Packet{Src: src, Dst: dst, SPort: sport, DPort: dport, ID: id, Proto: proto, TTL: ttl}
		f.IPLen = uint16(total)
		plen := max(l4len-8, 0)
		p.Len = uint16(plen)
		p.Hash = payloadHash(l4[8:], plen)
		return nil
	}
	if len(l4) < 20 {
		return ErrShort
	}
	doff := int(l4[12]>>4) * 4
	if doff < 20 {
		return ErrShort
	}
	*p = Packet{
		Src: src, Dst: dst,
		SPort: binary.BigEndian.Uint16(l4[0:2]), DPort: binary.BigEndian.Uint16(l4[2:4]),
		ID: id, Proto: proto, TTL: ttl, Flags: l4[13],
		Seq: binary.BigEndian.Uint32(l4[4:8]), Ack: binary.BigEndian.Uint32(l4[8:12]),
	}
	f.IPLen = uint16(total)
	plen := max(l4len-doff, 0)
	var payload []byte
	if len(l4) > doff {
		payload = l4[doff:]
	}
	p.Len = uint16(plen)
	p.Hash = payloadHash(payload, plen)
	return nil
}

// payloadHash is FNV-1a over the first hashBytes bytes of the payload
// (what was captured of them) and its length.
func payloadHash(b []byte, n int) uint64 {
	if len(b) > hashBytes {
		b = b[:hashBytes]
	}
	if len(b) > n {
		b = b[:n]
	}
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= uint64(n)
	h *= 1099511628211
	return h
}
