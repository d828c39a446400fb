//go:build linux

package nft

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/meshtrace/meshtrace/topology"
)

// xt_conntrack match_flags / invert_flags bits.
const (
	ctState      = 1 << 0
	ctProto      = 1 << 1
	ctOrigSrc    = 1 << 2
	ctOrigDst    = 1 << 3
	ctReplSrc    = 1 << 4
	ctReplDst    = 1 << 5
	ctStatus     = 1 << 6
	ctExpires    = 1 << 7
	ctOrigSrcPt  = 1 << 8
	ctOrigDstPt  = 1 << 9
	ctReplSrcPt  = 1 << 10
	ctReplDstPt  = 1 << 11
	ctDirection  = 1 << 12
	ctStateAlias = 1 << 13
)

// ctStateNames is print_state's order: INVALID (1<<0), NEW
// (XT_CONNTRACK_STATE_BIT(IP_CT_NEW) = 1<<3), RELATED (1<<2), ESTABLISHED
// (1<<1), UNTRACKED (1<<(IP_CT_NUMBER+3) = 1<<8), SNAT (1<<6), DNAT (1<<7).
var ctStateNames = []flagName{{1 << 0, "INVALID"}, {1 << 3, "NEW"}, {1 << 2, "RELATED"},
	{1 << 1, "ESTABLISHED"}, {1 << 8, "UNTRACKED"}, {1 << 6, "SNAT"}, {1 << 7, "DNAT"}}

// ctStatusNames is print_status's order (IPS_* bits).
var ctStatusNames = []flagName{{1 << 0, "EXPECTED"}, {1 << 1, "SEEN_REPLY"}, {1 << 2, "ASSURED"}, {1 << 3, "CONFIRMED"}}

// decodeConntrack decodes struct xt_conntrack_mtinfo1/2/3:
//
//	union nf_inet_addr origsrc_addr, origsrc_mask, origdst_addr, origdst_mask,
//	                   replsrc_addr, replsrc_mask, repldst_addr, repldst_mask; // 8 x 16 bytes
//	__u32 expires_min, expires_max;                                      // 128, 132
//	__u16 l4proto;                                                       // 136
//	__be16 origsrc_port, origdst_port, replsrc_port, repldst_port;       // 138..144
//	__u16 match_flags, invert_flags;                                     // 146, 148
//	v1: __u8 state_mask, status_mask;                                    // 150, 151
//	v2/v3: __u16 state_mask, status_mask;                                // 150, 152
//	v3: __u16 origsrc_port_high, origdst_port_high, replsrc_port_high, repldst_port_high; // 154..160
//
// In v3 the low ports are host order like the high ones (the kernel's
// port_match compares them with ntohs(port)); in v1/v2 they are network
// order. Printed as libxt_conntrack's conntrack_dump with prefix "--";
// the match is named "state" when STATE_ALIAS is set (-m state).
func decodeConntrack(rev uint32, info []byte) (topology.Match, error) {
	m := topology.Match{Name: "conntrack"}
	size := map[uint32]int{1: 152, 2: 154, 3: 162}[rev]
	if err := need(info, size, "conntrack"); err != nil {
		return m, err
	}
	flags, inv := ne.Uint16(info[146:]), ne.Uint16(info[148:])
	var state, status uint32
	if rev == 1 {
		state, status = uint32(info[150]), uint32(info[151])
	} else {
		state, status = uint32(ne.Uint16(info[150:])), uint32(ne.Uint16(info[152:]))
	}
	if flags&ctStateAlias != 0 {
		m.Name = "state"
	}
	add := func(bit uint16, name string, args ...string) {
		m.Opts = append(m.Opts, opt{Name: name, Neg: inv&bit != 0, Args: args})
	}
	if flags&ctState != 0 {
		name := "ctstate"
		if flags&ctStateAlias != 0 {
			name = "state"
		}
		add(ctState, name, joinFlags(state, ctStateNames))
	}
	if flags&ctProto != 0 {
		add(ctProto, "ctproto", strconv.Itoa(int(ne.Uint16(info[136:]))))
	}
	addrs := []struct {
		bit  uint16
		name string
		off  int
	}{{ctOrigSrc, "ctorigsrc", 0}, {ctOrigDst, "ctorigdst", 32}, {ctReplSrc, "ctreplsrc", 64}, {ctReplDst, "ctrepldst", 96}}
	for _, a := range addrs {
		if flags&a.bit != 0 {
			add(a.bit, a.name, numericAddrMask(info[a.off:a.off+4], info[a.off+16:a.off+20]))
		}
	}
	ports := []struct {
		bit  uint16
		name string
		off  int
	}{{ctOrigSrcPt, "ctorigsrcport", 138}, {ctOrigDstPt, "ctorigdstport", 140},
		{ctReplSrcPt, "ctreplsrcport", 142}, {ctReplDstPt, "ctrepldstport", 144}}
	for i, p := range ports {
		if flags&p.bit == 0 {
			continue
		}
		if rev < 3 {
			add(p.bit, p.name, strconv.Itoa(int(binary.BigEndian.Uint16(info[p.off:]))))
			continue
		}
		lo, hi := ne.Uint16(info[p.off:]), ne.Uint16(info[154+2*i:])
		if hi == 0 || hi == lo {
			add(p.bit, p.name, strconv.Itoa(int(lo)))
		} else {
			add(p.bit, p.name, fmt.Sprintf("%d:%d", lo, hi))
		}
	}
	if flags&ctStatus != 0 {
		s := joinFlags(status, ctStatusNames)
		if status == 0 {
			s = "NONE"
		}
		add(ctStatus, "ctstatus", s)
	}
	if flags&ctExpires != 0 {
		lo, hi := ne.Uint32(info[128:]), ne.Uint32(info[132:])
		s := strconv.FormatUint(uint64(lo), 10)
		if hi != lo {
			s += ":" + strconv.FormatUint(uint64(hi), 10)
		}
		add(ctExpires, "ctexpire", s)
	}
	if flags&ctDirection != 0 {
		dir := "ORIGINAL"
		if inv&ctDirection != 0 {
			dir = "REPLY"
		}
		m.Opts = append(m.Opts, opt{Name: "ctdir", Args: []string{dir}})
	}
	return m, nil
}

// xt_ipvs bitmask / invert bits.
const (
	ipvsProperty = 1 << 0
	ipvsProto    = 1 << 1
	ipvsVAddr    = 1 << 2
	ipvsVPort    = 1 << 3
	ipvsDir      = 1 << 4
	ipvsMethod   = 1 << 5
	ipvsVPortCtl = 1 << 6
)

// decodeIPVS decodes struct xt_ipvs_mtinfo (include/uapi/linux/netfilter/
// xt_ipvs.h):
//
//	union nf_inet_addr vaddr, vmask; // 0, 16
//	__be16 vport;                    // 32
//	__u8 l4proto, fwd_method;        // 34, 35
//	__be16 vportctl;                 // 36
//	__u8 invert, bitmask;            // 38, 39
//
// This kernel has no IPVS, so `-m ipvs` cannot be loaded here: the layout
// comes from the header and the text from libxt_ipvs.c's ipvs_mt_dump
// (iptables 1.8.9: "--ipvs" only when it is the sole bit, "--vproto",
// "--vaddr" without /32, "--vmethod GATE|IPIP|MASQ"); it is unit-tested
// with hand-built Info bytes only.
func decodeIPVS(info []byte) (topology.Match, error) {
	m := topology.Match{Name: "ipvs"}
	if err := need(info, 40, "ipvs"); err != nil {
		return m, err
	}
	inv, bm := info[38], info[39]
	add := func(bit uint8, name string, args ...string) {
		m.Opts = append(m.Opts, opt{Name: name, Neg: inv&bit != 0, Args: args})
	}
	if bm == ipvsProperty {
		add(ipvsProperty, "ipvs")
	}
	if bm&ipvsProto != 0 {
		add(ipvsProto, "vproto", strconv.Itoa(int(info[34])))
	}
	if bm&ipvsVAddr != 0 {
		add(ipvsVAddr, "vaddr", numericAddrMask(info[0:4], info[16:20]))
	}
	if bm&ipvsVPort != 0 {
		add(ipvsVPort, "vport", strconv.Itoa(int(binary.BigEndian.Uint16(info[32:]))))
	}
	if bm&ipvsDir != 0 {
		dir := "ORIGINAL"
		if inv&ipvsDir != 0 {
			dir = "REPLY"
		}
		m.Opts = append(m.Opts, opt{Name: "vdir", Args: []string{dir}})
	}
	if bm&ipvsMethod != 0 {
		method := "UNKNOWN"
		switch info[35] {
		case 3: // IP_VS_CONN_F_DROUTE
			method = "GATE"
		case 2: // IP_VS_CONN_F_TUNNEL
			method = "IPIP"
		case 0: // IP_VS_CONN_F_MASQ
			method = "MASQ"
		}
		add(ipvsMethod, "vmethod", method)
	}
	if bm&ipvsVPortCtl != 0 {
		add(ipvsVPortCtl, "vportctl", strconv.Itoa(int(binary.BigEndian.Uint16(info[36:]))))
	}
	return m, nil
}
