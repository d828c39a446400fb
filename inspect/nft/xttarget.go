package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
)

// target decodes one xt target expression into the rule.
func (d *ruleDecoder) target(x *XTTarget) {
	var opts []opt
	var err error
	switch x.Name {
	case "DNAT", "SNAT", "MASQUERADE", "REDIRECT":
		opts, err = decodeNAT(x.Name, x.Rev, x.Info)
	case "MARK":
		opts, err = decodeMARK(x.Rev, x.Info)
	case "REJECT":
		opts, err = decodeREJECT(x.Rev, x.Info)
	case "LOG":
		opts, err = decodeLOG(x.Rev, x.Info)
	default:
		err = errNotDecoded
	}
	if err != nil {
		what := xtUndecoded("target", x.Name, x.Rev, x.Info)
		d.problem("%s: %v", what, err)
		opts = []opt{undecodedMarker(what)}
	}
	d.setTarget(x.Name, false, opts)
}

// NAT range flags (include/uapi/linux/netfilter/nf_nat.h).
const (
	natMapIPs         = 1 << 0
	natProtoSpecified = 1 << 1
	natRandom         = 1 << 2
	natPersistent     = 1 << 3
	natRandomFully    = 1 << 4
	natProtoOffset    = 1 << 5
)

// natRange is struct nf_nat_range2, to which every revision is converted
// (as libxt_NAT.c does with RANGE2_INIT_FROM_*). Addresses keep all 16
// bytes of union nf_inet_addr: sprint_range compares them with memcmp.
type natRange struct {
	flags            uint32
	minAddr, maxAddr [16]byte
	minPort, maxPort uint16 // host order
	basePort         uint16
}

// decodeNATRange reads the Info of a NAT target by revision:
//
//	rev 0: struct nf_nat_ipv4_multi_range_compat { unsigned int rangesize;
//	       struct nf_nat_ipv4_range { unsigned int flags; __be32 min_ip, max_ip;
//	       union nf_conntrack_man_proto min, max; } range[1]; }  (20 bytes)
//	rev 1: struct nf_nat_range { unsigned int flags; union nf_inet_addr
//	       min_addr, max_addr; union nf_conntrack_man_proto min_proto, max_proto; } (40)
//	rev 2: struct nf_nat_range2 { ...nf_nat_range...; union nf_conntrack_man_proto base_proto; } (42)
//
// Only the first range of a compat multi-range is used (iptables prints
// only range[0]).
func decodeNATRange(rev uint32, info []byte) (natRange, error) {
	var r natRange
	switch rev {
	case 0:
		if err := need(info, 20, "nat range"); err != nil {
			return r, err
		}
		r.flags = ne.Uint32(info[4:])
		copy(r.minAddr[:4], info[8:12])
		copy(r.maxAddr[:4], info[12:16])
		r.minPort, r.maxPort = binary.BigEndian.Uint16(info[16:]), binary.BigEndian.Uint16(info[18:])
	case 1, 2:
		n := 40
		if rev == 2 {
			n = 42
		}
		if err := need(info, n, "nat range"); err != nil {
			return r, err
		}
		r.flags = ne.Uint32(info[0:])
		copy(r.minAddr[:], info[4:20])
		copy(r.maxAddr[:], info[20:36])
		r.minPort, r.maxPort = binary.BigEndian.Uint16(info[36:]), binary.BigEndian.Uint16(info[38:])
		if rev == 2 {
			r.basePort = binary.BigEndian.Uint16(info[40:])
		}
	default:
		return r, fmt.Errorf("nat revision %d is not supported", rev)
	}
	return r, nil
}

// sprint is libxt_NAT.c's sprint_range for AF_INET.
func (r natRange) sprint() string {
	var s string
	if r.flags&natMapIPs != 0 {
		s = ip4(r.minAddr[:4])
		if !bytes.Equal(r.minAddr[:], r.maxAddr[:]) {
			s += "-" + ip4(r.maxAddr[:4])
		}
	}
	if r.flags&natProtoSpecified != 0 {
		s += ":" + strconv.Itoa(int(r.minPort))
		if r.maxPort != r.minPort {
			s += "-" + strconv.Itoa(int(r.maxPort))
		}
		if r.flags&natProtoOffset != 0 {
			s += "/" + strconv.Itoa(int(r.basePort))
		}
	}
	return s
}

// decodeNAT prints DNAT/SNAT/MASQUERADE/REDIRECT as __NAT_print does with
// the "--" prefix: the range option (--to-destination, --to-source,
// --to-ports without the leading colon), then --random, --random-fully,
// --persistent.
func decodeNAT(name string, rev uint32, info []byte) ([]opt, error) {
	r, err := decodeNATRange(rev, info)
	if err != nil {
		return nil, err
	}
	rangeOpt, skipColon := map[string]string{"DNAT": "to-destination", "SNAT": "to-source",
		"MASQUERADE": "to-ports", "REDIRECT": "to-ports"}[name], name == "MASQUERADE" || name == "REDIRECT"
	var opts []opt
	if s := r.sprint(); s != "" {
		if skipColon && s[0] == ':' {
			s = s[1:]
		}
		opts = append(opts, opt{Name: rangeOpt, Args: []string{s}})
	}
	if r.flags&natRandom != 0 {
		opts = append(opts, opt{Name: "random"})
	}
	if r.flags&natRandomFully != 0 {
		opts = append(opts, opt{Name: "random-fully"})
	}
	if r.flags&natPersistent != 0 {
		opts = append(opts, opt{Name: "persistent"})
	}
	return opts, nil
}

// decodeMARK: rev 2 struct xt_mark_tginfo2 { __u32 mark, mask; }, printed
// as "--set-xmark 0x%x/0x%x" whatever option set it (--set-mark 0x100 is
// 0x100/0xffffffff).
func decodeMARK(rev uint32, info []byte) ([]opt, error) {
	if rev != 2 {
		return nil, fmt.Errorf("MARK revision %d is not supported", rev)
	}
	if err := need(info, 8, "MARK"); err != nil {
		return nil, err
	}
	return []opt{{Name: "set-xmark", Args: []string{hexU32(ne.Uint32(info[0:])) + "/" + hexU32(ne.Uint32(info[4:]))}}}, nil
}

// rejectWith is libipt_REJECT's table, indexed by enum ipt_reject_with
// (4, IPT_ICMP_ECHOREPLY, is no longer supported).
var rejectWith = map[uint32]string{0: "icmp-net-unreachable", 1: "icmp-host-unreachable",
	2: "icmp-proto-unreachable", 3: "icmp-port-unreachable", 5: "icmp-net-prohibited",
	6: "icmp-host-prohibited", 7: "tcp-reset", 8: "icmp-admin-prohibited"}

// decodeREJECT: struct ipt_reject_info { enum ipt_reject_with with; }.
func decodeREJECT(rev uint32, info []byte) ([]opt, error) {
	if rev != 0 {
		return nil, fmt.Errorf("REJECT revision %d is not supported", rev)
	}
	if err := need(info, 4, "REJECT"); err != nil {
		return nil, err
	}
	w := ne.Uint32(info)
	name, ok := rejectWith[w]
	if !ok {
		return nil, fmt.Errorf("reject-with %d is unknown", w)
	}
	return []opt{{Name: "reject-with", Args: []string{name}}}, nil
}

// decodeLOG: struct xt_log_info { unsigned char level, logflags; char
// prefix[30]; }, printed as LOG_save: --log-prefix (when set), --log-level
// (when not the default 4), then the flag options.
func decodeLOG(rev uint32, info []byte) ([]opt, error) {
	if rev != 0 {
		return nil, fmt.Errorf("LOG revision %d is not supported", rev)
	}
	if err := need(info, 32, "LOG"); err != nil {
		return nil, err
	}
	var opts []opt
	if p := cString(info[2:32]); p != "" {
		opts = append(opts, opt{Name: "log-prefix", Args: []string{p}, Quoted: saveQuoted(p)})
	}
	if info[0] != 4 {
		opts = append(opts, opt{Name: "log-level", Args: []string{strconv.Itoa(int(info[0]))}})
	}
	for _, f := range []flagName{{0x01, "log-tcp-sequence"}, {0x02, "log-tcp-options"},
		{0x04, "log-ip-options"}, {0x08, "log-uid"}, {0x20, "log-macdecode"}} {
		if uint32(info[1])&f.bit != 0 {
			opts = append(opts, opt{Name: f.name})
		}
	}
	return opts, nil
}

// udataComment extracts a rule comment stored in the rule's user data
// (NFTNL_UDATA_RULE_COMMENT, type 0: a TLV of u8 type, u8 len, value),
// which iptables-nft shows as a trailing -m comment.
func udataComment(b []byte) (string, bool) {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		if len(b) < 2+n {
			return "", false
		}
		if typ == 0 {
			return cString(b[2 : 2+n]), true
		}
		b = b[2+n:]
	}
	return "", false
}
