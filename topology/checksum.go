package topology

import "sort"

// ChecksumSighting is one packet seen at one hop with its TCP/UDP checksum
// checked: what a capture gives bad-checksum detection (trace captures
// each hop; this is the hand-off between capture and analysis).
type ChecksumSighting struct {
	// Packet identifies the packet across hops (trace's correlation key:
	// what survives every NAT).
	Packet string
	// Order is the hop's place on the packet's way, 0 first.
	Order int
	// Hop names the capture point ("host/eth0"), Netns its namespace.
	Hop, Netns string
	Proto      string // tcp or udp (the inner packet's, for VXLAN)
	// Valid: the L4 checksum computed over the captured bytes is right.
	Valid bool
	// NotReady: the kernel marked the frame TP_STATUS_CSUMNOTREADY
	// (CHECKSUM_PARTIAL: the checksum is filled in later, by the NIC or
	// the stack), so its value means nothing: never a bad checksum.
	NotReady bool
}

// ChecksumBreak is a hop where packets first have a wrong checksum
// although the kernel marks them complete.
type ChecksumBreak struct {
	Hop, Netns, Proto string
	// After is the hop before it where the same packets were still
	// right ("" when they were wrong where first seen: they came in bad).
	After string
	// Packets is how many packets went bad there.
	Packets int
}

// BadChecksums finds, for every packet, the first hop where its checksum
// is wrong though the frame is complete (neither valid nor NotReady), and
// counts packets by that hop and the hop before it. A packet whose every
// sighting is valid or not ready is fine; sightings after the first bad
// one are the same damage and are not counted again. It is pure: the
// sightings are its only input. Breaks come ordered by packets, then hop.
func BadChecksums(sightings []ChecksumSighting) []ChecksumBreak {
	byPacket := map[string][]ChecksumSighting{}
	for _, s := range sightings {
		byPacket[s.Packet] = append(byPacket[s.Packet], s)
	}
	type key struct{ hop, netns, proto, after string }
	count := map[key]int{}
	for _, ss := range byPacket {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Order < ss[j].Order })
		after := ""
		for _, s := range ss {
			if s.Valid || s.NotReady {
				after = s.Hop
				continue
			}
			count[key{s.Hop, s.Netns, s.Proto, after}]++
			break
		}
	}
	out := make([]ChecksumBreak, 0, len(count))
	for k, n := range count {
		out = append(out, ChecksumBreak{Hop: k.hop, Netns: k.netns, Proto: k.proto, After: k.after, Packets: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Packets != out[j].Packets {
			return out[i].Packets > out[j].Packets
		}
		if out[i].Hop != out[j].Hop {
			return out[i].Hop < out[j].Hop
		}
		return out[i].After < out[j].After
	})
	return out
}
