package capture

import (
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

// The tpacket status bits a checksum check reads (linux/if_packet.h):
// the kernel reports them per frame (tp_status, or PACKET_AUXDATA's).
const (
	// StatusCsumNotReady: the frame is CHECKSUM_PARTIAL, its L4
	// checksum is filled in later (by the NIC or the stack); its value
	// means nothing.
	StatusCsumNotReady = 1 << 3 // TP_STATUS_CSUMNOTREADY
	// StatusCsumValid: the kernel says a checksum was verified
	// (skb_csum_unnecessary): CHECKSUM_UNNECESSARY, or csum_valid, which
	// after VXLAN decapsulation is still the outer UDP checksum's (a
	// packet damaged inside a right outer checksum reaches vxlan0 with
	// it). So it is no proof for the inner packet: it only explains
	// GRO's merged segments (see groChecksum).
	StatusCsumValid = 1 << 7 // TP_STATUS_CSUM_VALID
)

// L4Checksum is what one captured frame says of its TCP or UDP checksum:
// the innermost IPv4 packet's (a VXLAN frame's inner one).
type L4Checksum struct {
	// Packet names the packet the same at every hop where it is not
	// rewritten: protocol, addresses, ports, IP id, and TCP's sequence
	// and acknowledgement numbers (the checksum itself is not part of
	// it: a hop may damage it).
	Packet string
	Proto  string // tcp or udp
	// Valid: the checksum is right, computed over the captured bytes (a
	// UDP checksum of 0 is none, so right; a GRO-merged packet the
	// kernel verified is right).
	Valid bool
	// NotReady: StatusCsumNotReady; never a wrong checksum.
	NotReady bool
	// VXLAN: the packet was inside a VXLAN frame.
	VXLAN bool
}

// CheckL4 checks the TCP or UDP checksum of an Ethernet frame's IPv4
// packet, inside VXLAN (udp/4789) when it is VXLAN, given the kernel's
// status bits for the frame. ok is false for anything else, and for a
// packet that cannot be checked: a fragment, or one cut short by the
// capture.
func CheckL4(frame []byte, status uint32) (c L4Checksum, ok bool) {
	var (
		eth   layers.Ethernet
		ip    layers.IPv4
		tcp   layers.TCP
		udp   layers.UDP
		vxlan layers.VXLAN
	)
	df := gopacket.NilDecodeFeedback
	data := frame
	for depth := 0; depth < 2; depth++ {
		if eth.DecodeFromBytes(data, df) != nil || eth.EthernetType != layers.EthernetTypeIPv4 {
			return c, false
		}
		if ip.DecodeFromBytes(eth.Payload, df) != nil || ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			return c, false
		}
		// The IP layer is cut to its total length; less than that was
		// captured when the payload falls short of it.
		seg := ip.Payload
		if int(ip.Length) != int(ip.IHL)*4+len(seg) {
			return c, false
		}
		c.NotReady = status&StatusCsumNotReady != 0
		switch ip.Protocol {
		case layers.IPProtocolTCP:
			if tcp.DecodeFromBytes(seg, df) != nil {
				return c, false
			}
			c.Proto = "tcp"
			c.Packet = fmt.Sprintf("tcp %s:%d>%s:%d id %d seq %d ack %d", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort, ip.Id, tcp.Seq, tcp.Ack)
			c.Valid = l4OK(&ip, seg, tcp.Checksum, status)
			return c, true
		case layers.IPProtocolUDP:
			if udp.DecodeFromBytes(seg, df) != nil {
				return c, false
			}
			if udp.DstPort == addrplan.VXLANPort && depth == 0 && vxlan.DecodeFromBytes(udp.Payload, df) == nil {
				// The outer checksum is the underlay's: the inner packet
				// is what reaches the overlay, and what a broken offload
				// damages.
				// The status bits stay: an encapsulating sender's
				// CHECKSUM_PARTIAL is the inner packet's, and GRO
				// merges the inner segments of VXLAN frames too.
				data, c.VXLAN = vxlan.Payload, true
				continue
			}
			c.Proto = "udp"
			c.Packet = fmt.Sprintf("udp %s:%d>%s:%d id %d", ip.SrcIP, udp.SrcPort, ip.DstIP, udp.DstPort, ip.Id)
			c.Valid = udp.Checksum == 0 || l4OK(&ip, seg, udp.Checksum, status)
			return c, true
		default:
			return c, false
		}
	}
	return c, false
}

// l4OK says whether the segment's checksum field is right, or the one
// GRO writes into a packet it merged from segments it verified
// (tcp4_gro_complete, udp_gro_complete: the pseudo-header's sum, as for
// CHECKSUM_PARTIAL), with the kernel saying it verified it.
func l4OK(ip *layers.IPv4, seg []byte, field uint16, status uint32) bool {
	if l4Sum(ip, seg) == 0 {
		return true
	}
	return status&StatusCsumValid != 0 && field == groChecksum(ip, len(seg))
}

// groChecksum is the checksum field GRO leaves in a merged packet of n
// bytes of L4: the folded pseudo-header sum, not complemented.
func groChecksum(ip *layers.IPv4, n int) uint16 {
	return ^gopacket.FoldChecksum(pseudoSum(ip, n))
}

func pseudoSum(ip *layers.IPv4, n int) uint32 {
	sum := gopacket.ComputeChecksum(ip.SrcIP.To4(), 0)
	sum = gopacket.ComputeChecksum(ip.DstIP.To4(), sum)
	return sum + uint32(ip.Protocol) + uint32(n)
}

// l4Sum is the ones' complement checksum over the IPv4 pseudo-header and
// the segment, its checksum field included: 0 when the field is right.
func l4Sum(ip *layers.IPv4, seg []byte) uint16 {
	return gopacket.FoldChecksum(gopacket.ComputeChecksum(seg, pseudoSum(ip, len(seg))))
}
