package nft

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Decoders for the matches of Docker's encrypted overlays: bpf (the VXLAN
// VNI match of Docker 24+), policy (cleartext VXLAN is dropped) and u32
// (the VNI match up to Docker 23), laid out as the kernel's xt_bpf.h,
// xt_policy.h and xt_u32.h and printed as iptables' libxt_bpf.c,
// libxt_policy.c and libxt_u32.c save functions do (unchanged from
// iptables 1.8.4 to 1.8.11).

// bpfMaxInstr is XT_BPF_MAX_NUM_INSTR; a struct sock_filter is 8 bytes
// (__u16 code; __u8 jt, jf; __u32 k).
const bpfMaxInstr = 64

// decodeBPF:
//
//	rev 0: struct xt_bpf_info { __u16 bpf_program_num_elem;
//	       struct sock_filter bpf_program[64]; (at 4) ... }
//	rev 1: struct xt_bpf_info_v1 { __u16 mode, bpf_program_num_elem;
//	       __s32 fd; union { struct sock_filter bpf_program[64];
//	       char path[512]; } (at 8) ... }
//
// saved as ` --bytecode "N,code jt jf k,..."` (bpf_save_code) or, for a
// pinned program (mode XT_BPF_MODE_FD_PINNED), ` --object-pinned PATH`.
func decodeBPF(rev uint32, info []byte) (topology.Match, error) {
	m := topology.Match{Name: "bpf"}
	var n int
	var prog []byte
	switch rev {
	case 0:
		if err := need(info, 4+8*bpfMaxInstr, "bpf"); err != nil {
			return m, err
		}
		n, prog = int(ne.Uint16(info)), info[4:4+8*bpfMaxInstr]
	case 1:
		if err := need(info, 8+8*bpfMaxInstr, "bpf"); err != nil {
			return m, err
		}
		switch mode := ne.Uint16(info); mode {
		case 0: // XT_BPF_MODE_BYTECODE
			n, prog = int(ne.Uint16(info[2:])), info[8:8+8*bpfMaxInstr]
		case 1: // XT_BPF_MODE_FD_PINNED
			m.Opts = []opt{{Name: "object-pinned", Args: []string{cString(info[8 : 8+8*bpfMaxInstr])}}}
			return m, nil
		default: // bpf_save_v1 refuses it: "unknown bpf mode"
			return m, fmt.Errorf("bpf mode %d is unknown", mode)
		}
	default:
		return m, fmt.Errorf("bpf revision %d is not supported", rev)
	}
	if n == 0 || n > bpfMaxInstr {
		return m, fmt.Errorf("bpf program of %d instructions (the kernel takes 1 to %d)", n, bpfMaxInstr)
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(n))
	for i := 0; i < n; i++ {
		ins := prog[8*i:]
		fmt.Fprintf(&b, ",%d %d %d %d", ne.Uint16(ins), ins[2], ins[3], ne.Uint32(ins[4:]))
	}
	// Always quoted: bpf_save_code prints the quotes itself.
	m.Opts = []opt{{Name: "bytecode", Args: []string{b.String()}, Quoted: true}}
	return m, nil
}

// xt_policy_info: struct xt_policy_elem pol[4] (76 bytes each), __u16
// flags at 304, __u16 len at 306.
const (
	policyMaxElem  = 4
	policyElemSize = 76
	policyInfoSize = policyMaxElem*policyElemSize + 4

	policyMatchIn     = 0x1
	policyMatchNone   = 0x4
	policyMatchStrict = 0x8
)

// decodePolicy prints as policy4_save: --dir, --pol, --strict, then each
// element's options (print_entry) with --next between elements.
func decodePolicy(rev uint32, info []byte) (topology.Match, error) {
	m := topology.Match{Name: "policy"}
	if rev != 0 {
		return m, fmt.Errorf("policy revision %d is not supported", rev)
	}
	if err := need(info, policyInfoSize, "policy"); err != nil {
		return m, err
	}
	flags, n := ne.Uint16(info[304:]), int(ne.Uint16(info[306:]))
	if n > policyMaxElem {
		return m, fmt.Errorf("policy of %d elements (at most %d)", n, policyMaxElem)
	}
	dir, pol := "out", "ipsec"
	if flags&policyMatchIn != 0 {
		dir = "in"
	}
	if flags&policyMatchNone != 0 {
		pol = "none"
	}
	m.Opts = []opt{{Name: "dir", Args: []string{dir}}, {Name: "pol", Args: []string{pol}}}
	if flags&policyMatchStrict != 0 {
		m.Opts = append(m.Opts, opt{Name: "strict"})
	}
	for i := 0; i < n; i++ {
		m.Opts = append(m.Opts, policyElemOpts(info[i*policyElemSize:(i+1)*policyElemSize])...)
		if i+1 < n {
			m.Opts = append(m.Opts, opt{Name: "next"})
		}
	}
	return m, nil
}

// policyElemOpts is print_entry for one struct xt_policy_elem: union
// xt_policy_addr saddr, smask, daddr, dmask (16 bytes each); __be32 spi
// (printed as stored, as libxt_policy does); __u32 reqid; __u8 proto, mode;
// struct xt_policy_spec match, invert (bits saddr, daddr, proto, mode, spi,
// reqid from bit 0).
func policyElemOpts(e []byte) []opt {
	const (
		specSaddr = 1 << iota
		specDaddr
		specProto
		specMode
		specSPI
		specReqid
	)
	match, inv := e[74], e[75]
	var opts []opt
	add := func(bit uint8, name, arg string) {
		if match&bit != 0 {
			opts = append(opts, opt{Name: name, Neg: inv&bit != 0, Args: []string{arg}})
		}
	}
	add(specReqid, "reqid", strconv.FormatUint(uint64(ne.Uint32(e[68:])), 10))
	add(specSPI, "spi", hexU32(ne.Uint32(e[64:])))
	add(specProto, "proto", protoNumberName(e[72]))
	mode := "???"
	switch e[73] {
	case 0:
		mode = "transport"
	case 1:
		mode = "tunnel"
	}
	add(specMode, "mode", mode)
	add(specDaddr, "tunnel-dst", numericAddrMask(e[32:36], e[48:52]))
	add(specSaddr, "tunnel-src", numericAddrMask(e[0:4], e[16:20]))
	return opts
}

// struct xt_u32 (1984 bytes): struct xt_u32_test tests[11] (180 bytes
// each: struct xt_u32_location_element { __u32 number; __u8 nextop; }
// location[11] at 0, struct xt_u32_value_element { __u32 min, max; }
// value[11] at 88, __u8 nnums at 176, nvalues at 177), __u8 ntests at
// 1980, invert at 1981.
const (
	u32MaxSize  = 11 // XT_U32_MAXSIZE + 1
	u32TestSize = 180
	u32InfoSize = u32MaxSize*u32TestSize + 4
)

// u32Ops are enum xt_u32_ops as u32_dump prints them (an unknown operator
// prints nothing).
var u32Ops = []string{"&", "<<", ">>", "@"}

// decodeU32 prints as u32_save: [!] --u32 "TESTS" with every number in
// 0x%x, tests joined by &&.
func decodeU32(rev uint32, info []byte) (topology.Match, error) {
	m := topology.Match{Name: "u32"}
	if rev != 0 {
		return m, fmt.Errorf("u32 revision %d is not supported", rev)
	}
	if err := need(info, u32InfoSize, "u32"); err != nil {
		return m, err
	}
	nt := int(info[1980])
	if nt > u32MaxSize {
		return m, fmt.Errorf("u32 with %d tests (at most %d)", nt, u32MaxSize)
	}
	var b strings.Builder
	for i := 0; i < nt; i++ {
		tt := info[i*u32TestSize:]
		nn, nv := int(tt[176]), int(tt[177])
		if nn > u32MaxSize || nv > u32MaxSize {
			return m, fmt.Errorf("u32 test %d has %d locations and %d values (at most %d)", i, nn, nv, u32MaxSize)
		}
		if i > 0 {
			b.WriteString("&&")
		}
		// u32_dump prints location[0] even when nnums is 0.
		b.WriteString(hexU32(ne.Uint32(tt)))
		for j := 1; j < nn; j++ {
			if op := tt[8*j+4]; int(op) < len(u32Ops) {
				b.WriteString(u32Ops[op])
			}
			b.WriteString(hexU32(ne.Uint32(tt[8*j:])))
		}
		b.WriteByte('=')
		for j := 0; j < nv; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			lo, hi := ne.Uint32(tt[88+8*j:]), ne.Uint32(tt[92+8*j:])
			b.WriteString(hexU32(lo))
			if lo != hi {
				b.WriteString(":" + hexU32(hi))
			}
		}
	}
	m.Opts = []opt{{Name: "u32", Neg: info[1981] != 0, Args: []string{b.String()}, Quoted: true}}
	return m, nil
}
