package nft

import (
	"bufio"
	"fmt"
	"math/bits"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Formatting helpers that reproduce how iptables-save (libxtables) prints
// addresses, masks, protocols and flag lists, so decoded rules render to
// the same text.

// ip4 returns the dotted form of the first four bytes of b (zero-padded).
func ip4(b []byte) string {
	var a [4]byte
	copy(a[:], b)
	return netip.AddrFrom4(a).String()
}

// maskCIDR is the prefix length of a contiguous IPv4 mask, or -1.
func maskCIDR(m [4]byte) int {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := bits.LeadingZeros32(^v)
	if n < 32 && v<<n != 0 {
		return -1
	}
	return n
}

// saveAddr is the -s/-d value as iptables-nft's save_ipv4_addr prints it:
// ADDR/PREFIX, or ADDR/DOTTED-MASK when the mask is not contiguous.
func saveAddr(addr, mask [4]byte) string {
	if n := maskCIDR(mask); n >= 0 {
		return ip4(addr[:]) + "/" + strconv.Itoa(n)
	}
	return ip4(addr[:]) + "/" + ip4(mask[:])
}

// numericAddrMask is xtables_ipaddr_to_numeric + xtables_ipmask_to_numeric
// (conntrack, ipvs): "/32" is left out, other contiguous masks are /N,
// non-contiguous masks dotted.
func numericAddrMask(addr, mask []byte) string {
	var m [4]byte
	copy(m[:], mask)
	switch n := maskCIDR(m); n {
	case 32:
		return ip4(addr)
	case -1:
		return ip4(addr) + "/" + ip4(m[:])
	default:
		return ip4(addr) + "/" + strconv.Itoa(n)
	}
}

// hexU32 prints like C's "0x%x".
func hexU32(v uint32) string { return "0x" + strconv.FormatUint(uint64(v), 16) }

// joinFlags lists the names of the bits set in v, in table order, joined
// by ",". Bits without a name are ignored.
func joinFlags(v uint32, names []flagName) string {
	var out []string
	for _, n := range names {
		if v&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ",")
}

type flagName struct {
	bit  uint32
	name string
}

// builtinProtos is libxtables' xtables_chain_protos, used when
// /etc/protocols does not name a protocol.
var builtinProtos = map[uint8]string{
	6: "tcp", 132: "sctp", 17: "udp", 136: "udplite", 1: "icmp",
	58: "icmpv6", 50: "esp", 51: "ah", 135: "mh", 0: "all",
}

var (
	protoOnce  sync.Once
	protoNames map[uint8]string
)

// protocolsFile is read once, on first use.
const protocolsFile = "/etc/protocols"

// protoName is the -p value as iptables-save prints it: the name
// getprotobynumber(3) gives (/etc/protocols), else libxtables' own table,
// else the number.
func protoName(p uint8) string {
	protoOnce.Do(func() { protoNames = readProtocols(protocolsFile) })
	return protoNameIn(protoNames, p)
}

// protoNumberName is the protocol as libxt_policy's print_proto prints it:
// the name getprotobynumber(3) gives, else the number.
func protoNumberName(p uint8) string {
	protoOnce.Do(func() { protoNames = readProtocols(protocolsFile) })
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

func protoNameIn(names map[uint8]string, p uint8) string {
	if p != 0 {
		if n, ok := names[p]; ok {
			return n
		}
	}
	if n, ok := builtinProtos[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// readProtocols parses an /etc/protocols file: "name number aliases...",
// first entry per number wins (as getprotobynumber returns it). A missing
// file gives an empty map.
func readProtocols(path string) map[uint8]string {
	m := map[uint8]string{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		n, err := strconv.ParseUint(fs[1], 10, 8)
		if err != nil {
			continue
		}
		if _, seen := m[uint8(n)]; !seen {
			m[uint8(n)] = fs[0]
		}
	}
	return m
}

// cString is the NUL-terminated string at the start of b.
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// portRange prints a port or a range the way libxt_tcp/udp do ("%u" or
// "%u:%u").
func portRange(lo, hi uint16) string {
	if lo == hi {
		return strconv.Itoa(int(lo))
	}
	return fmt.Sprintf("%d:%d", lo, hi)
}

func itoa(i int) string { return strconv.Itoa(i) }

// saveQuoted reports whether iptables-save's xtables_save_string quotes s
// (empty, or any byte outside [A-Za-z0-9_-]): the Option.Quoted that
// inspect/parse sets for the same text, so Render quotes it the same way.
func saveQuoted(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return true
		}
	}
	return false
}
