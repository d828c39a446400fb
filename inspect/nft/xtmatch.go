package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Decoders for the Info structs of xtables-compat matches, laid out as the
// kernel's include/uapi/linux/netfilter/xt_*.h on a 64-bit little-endian
// host (the host order is what iptables wrote), printed as the matching
// iptables extensions/libxt_*.c save function does.

// ne is the host byte order of the Info structs.
var ne = binary.NativeEndian

type opt = topology.Option

// need reports an error when info is shorter than n bytes.
func need(info []byte, n int, what string) error {
	if len(info) < n {
		return fmt.Errorf("%s info is %d bytes, want at least %d", what, len(info), n)
	}
	return nil
}

// match decodes one xt match expression into the rule.
func (d *ruleDecoder) match(x *XTMatch) {
	var m topology.Match
	var err error
	switch {
	case x.Name == "tcp" && x.Rev == 0:
		err = d.xtTCP(x.Info)
		if err == nil {
			return
		}
	case x.Name == "udp" && x.Rev == 0:
		err = d.xtUDP(x.Info)
		if err == nil {
			return
		}
	case x.Name == "addrtype":
		m, err = decodeAddrtype(x.Rev, x.Info)
	case x.Name == "conntrack" && x.Rev >= 1 && x.Rev <= 3:
		m, err = decodeConntrack(x.Rev, x.Info)
	case x.Name == "mark" && x.Rev == 1:
		m, err = decodeMarkMatch(x.Info)
	case x.Name == "ipvs" && x.Rev == 0:
		m, err = decodeIPVS(x.Info)
	case x.Name == "statistic" && x.Rev == 0:
		m, err = decodeStatistic(x.Info)
	case x.Name == "comment" && x.Rev == 0:
		c := cString(x.Info)
		m = topology.Match{Name: "comment", Opts: []opt{{Name: "comment", Args: []string{c}, Quoted: saveQuoted(c)}}}
	case x.Name == "multiport" && x.Rev <= 1:
		m, err = decodeMultiport(x.Rev, x.Info)
	case x.Name == "bpf":
		m, err = decodeBPF(x.Rev, x.Info)
	case x.Name == "policy":
		m, err = decodePolicy(x.Rev, x.Info)
	case x.Name == "u32":
		m, err = decodeU32(x.Rev, x.Info)
	case x.Name == "set":
		m, err = decodeSet(x.Rev, x.Info, d.sets)
	default:
		err = errNotDecoded
	}
	if err != nil {
		what := xtUndecoded("match", x.Name, x.Rev, x.Info)
		d.problem("%s: %v", what, err)
		d.r.Matches = append(d.r.Matches, topology.Match{Name: x.Name, Opts: []opt{undecodedMarker(what)}})
		return
	}
	d.r.Matches = append(d.r.Matches, m)
}

// errNotDecoded is the reason for an extension (or revision) this reader
// has no decoder for.
var errNotDecoded = errors.New("no decoder for this extension and revision")

// xtUndecoded names an xt match or target that stays undecoded by kind,
// name, revision and size ("match bpf rev 1 (528 bytes)"): the Info bytes
// themselves are never printed, a hex dump helps nobody reading a rule.
func xtUndecoded(kind, name string, rev uint32, info []byte) string {
	return fmt.Sprintf("%s %s rev %d (%d bytes)", kind, name, rev, len(info))
}

// undecodedMarker is the option that stands for what was not decoded:
//
//	-m bpf --nft-undecoded "match bpf rev 1 (528 bytes)"
//
// It is an option, not a comment, so the rule text reads back through the
// iptables-save parser as the same rule with a match (or target) the
// evaluator does not know, which it reports as unknown; a line that did
// not parse would drop the rule from its chain and widen what the chain
// lets through. iptables-restore refuses the option, so the text cannot be
// loaded back as some other rule.
func undecodedMarker(what string) opt {
	return opt{Name: undecodedOpt, Args: []string{what}, Quoted: true}
}

// xtTCP: struct xt_tcp { __u16 spts[2], dpts[2]; __u8 option, flg_mask,
// flg_cmp, invflags; } (ports in host order).
func (d *ruleDecoder) xtTCP(info []byte) error {
	if err := need(info, 12, "tcp"); err != nil {
		return err
	}
	t := d.newXTPorts("tcp")
	t.spts = [2]uint16{ne.Uint16(info[0:]), ne.Uint16(info[2:])}
	t.dpts = [2]uint16{ne.Uint16(info[4:]), ne.Uint16(info[6:])}
	t.option, t.flgMask, t.flgCmp = info[8], info[9], info[10]
	inv := info[11]
	t.sinv, t.dinv, t.flgInv, t.optInv = inv&0x01 != 0, inv&0x02 != 0, inv&0x04 != 0, inv&0x08 != 0
	return nil
}

// xtUDP: struct xt_udp { __u16 spts[2], dpts[2]; __u8 invflags; }.
func (d *ruleDecoder) xtUDP(info []byte) error {
	if err := need(info, 9, "udp"); err != nil {
		return err
	}
	t := d.newXTPorts("udp")
	t.spts = [2]uint16{ne.Uint16(info[0:]), ne.Uint16(info[2:])}
	t.dpts = [2]uint16{ne.Uint16(info[4:]), ne.Uint16(info[6:])}
	t.sinv, t.dinv = info[8]&0x01 != 0, info[8]&0x02 != 0
	return nil
}

// newXTPorts starts a new tcp/udp match for an xt tcp/udp expression
// (iptables appends each as its own match; later native ports reuse it).
func (d *ruleDecoder) newXTPorts(name string) *tcpudp {
	if d.ports != nil {
		d.r.Matches[d.ports.idx] = d.ports.match()
	}
	d.ports = nil
	return d.portMatch(name)
}

// rtnNames is libxt_addrtype's rtn_names: bit i is 1<<i.
var rtnNames = []string{"UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST",
	"BLACKHOLE", "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"}

func addrTypes(mask uint16) string {
	var out []string
	for i, n := range rtnNames {
		if mask&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// decodeAddrtype: rev 0 struct xt_addrtype_info { __u16 source, dest;
// __u32 invert_source, invert_dest; }; rev 1 struct xt_addrtype_info_v1
// { __u16 source, dest; __u32 flags; } with flags INVERT_SOURCE 1,
// INVERT_DEST 2, LIMIT_IFACE_IN 4, LIMIT_IFACE_OUT 8.
func decodeAddrtype(rev uint32, info []byte) (topology.Match, error) {
	m := topology.Match{Name: "addrtype"}
	var src, dst uint16
	var invSrc, invDst bool
	var flags uint32
	switch rev {
	case 0:
		if err := need(info, 12, "addrtype"); err != nil {
			return m, err
		}
		src, dst = ne.Uint16(info[0:]), ne.Uint16(info[2:])
		invSrc, invDst = ne.Uint32(info[4:]) != 0, ne.Uint32(info[8:]) != 0
	case 1:
		if err := need(info, 8, "addrtype"); err != nil {
			return m, err
		}
		src, dst, flags = ne.Uint16(info[0:]), ne.Uint16(info[2:]), ne.Uint32(info[4:])
		invSrc, invDst = flags&1 != 0, flags&2 != 0
	default:
		return m, fmt.Errorf("addrtype revision %d is not supported", rev)
	}
	if src != 0 {
		m.Opts = append(m.Opts, opt{Name: "src-type", Neg: invSrc, Args: []string{addrTypes(src)}})
	}
	if dst != 0 {
		m.Opts = append(m.Opts, opt{Name: "dst-type", Neg: invDst, Args: []string{addrTypes(dst)}})
	}
	if flags&4 != 0 {
		m.Opts = append(m.Opts, opt{Name: "limit-iface-in"})
	}
	if flags&8 != 0 {
		m.Opts = append(m.Opts, opt{Name: "limit-iface-out"})
	}
	return m, nil
}

// decodeMarkMatch: struct xt_mark_mtinfo1 { __u32 mark, mask; __u8 invert; }.
func decodeMarkMatch(info []byte) (topology.Match, error) {
	m := topology.Match{Name: "mark"}
	if err := need(info, 9, "mark"); err != nil {
		return m, err
	}
	mark, mask := ne.Uint32(info[0:]), ne.Uint32(info[4:])
	arg := hexU32(mark)
	if mask != 0xffffffff {
		arg += "/" + hexU32(mask)
	}
	m.Opts = []opt{{Name: "mark", Neg: info[8] != 0, Args: []string{arg}}}
	return m, nil
}

// decodeStatistic: struct xt_statistic_info { __u16 mode, flags; union {
// struct { __u32 probability; } random; struct { __u32 every, packet,
// count; } nth; } u; void *master (aligned 8); }.
func decodeStatistic(info []byte) (topology.Match, error) {
	m := topology.Match{Name: "statistic"}
	if err := need(info, 16, "statistic"); err != nil {
		return m, err
	}
	mode, flags := ne.Uint16(info[0:]), ne.Uint16(info[2:])
	inv := flags&1 != 0
	switch mode {
	case 0: // random
		p := float64(ne.Uint32(info[4:])) / 0x80000000
		m.Opts = []opt{{Name: "mode", Args: []string{"random"}},
			{Name: "probability", Neg: inv, Args: []string{strconv.FormatFloat(p, 'f', 11, 64)}}}
	case 1: // nth; every is stored minus one
		m.Opts = []opt{{Name: "mode", Args: []string{"nth"}},
			{Name: "every", Neg: inv, Args: []string{strconv.FormatUint(uint64(ne.Uint32(info[4:]))+1, 10)}},
			{Name: "packet", Args: []string{strconv.FormatUint(uint64(ne.Uint32(info[8:])), 10)}}}
	default:
		return m, fmt.Errorf("statistic mode %d is unknown", mode)
	}
	return m, nil
}

// decodeMultiport: rev 0 struct xt_multiport { __u8 flags, count; __u16
// ports[15]; }; rev 1 struct xt_multiport_v1 { __u8 flags, count; __u16
// ports[15]; __u8 pflags[15]; __u8 invert; }. flags: 0 source, 1
// destination, 2 either.
func decodeMultiport(rev uint32, info []byte) (topology.Match, error) {
	const maxPorts = 15
	m := topology.Match{Name: "multiport"}
	size := 32
	if rev == 1 {
		size = 48
	}
	if err := need(info, size, "multiport"); err != nil {
		return m, err
	}
	var name string
	switch info[0] {
	case 0:
		name = "sports"
	case 1:
		name = "dports"
	case 2:
		name = "ports"
	default:
		return m, fmt.Errorf("multiport flags %d are unknown", info[0])
	}
	count := int(info[1])
	if count > maxPorts {
		return m, fmt.Errorf("multiport count %d exceeds %d", count, maxPorts)
	}
	port := func(i int) string { return strconv.Itoa(int(ne.Uint16(info[2+2*i:]))) }
	var b strings.Builder
	for i := 0; i < count; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(port(i))
		if rev == 1 && info[32+i] != 0 && i+1 < count {
			i++
			b.WriteString(":" + port(i))
		}
	}
	m.Opts = []opt{{Name: name, Neg: rev == 1 && info[47] != 0, Args: []string{b.String()}}}
	return m, nil
}
