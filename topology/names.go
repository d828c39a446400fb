package topology

import (
	"strconv"
	"strings"
)

// The names the model gives kernel numbers, shared by the live readers and
// the text parsers so both say the same thing about the same namespace.

// ProtoName names an IP protocol number as Conntrack.Proto does: tcp, udp,
// icmp, sctp, else the number.
func ProtoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// NeighStates are the NUD_* states by bit (NUD_INCOMPLETE = 1<<0 …
// NUD_PERMANENT = 1<<7), named as `ip neigh` prints them, lower-case.
var NeighStates = [8]string{"incomplete", "reachable", "stale", "delay", "probe", "failed", "noarp", "permanent"}

// NeighStateName names a NUD_* bit set as Neigh.State and FDB.State do: the
// states of the set bits, in bit order, joined by commas; "none" for 0.
func NeighStateName(nud int) string {
	var parts []string
	for i, n := range NeighStates {
		if nud&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}
