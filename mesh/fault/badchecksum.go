package fault

import "github.com/cilium/ebpf/asm"

// The bad-checksum fault's program: a broken NIC on the underlay, as a tc
// (cls_bpf, direct-action) program on a node's uplink ingress. For every
// IPv4 frame that is VXLAN (udp/4789) carrying an unfragmented IPv4
// TCP or UDP packet, it flips a bit of the inner L4 checksum (a UDP
// checksum of 0, "none", is left alone, and never made 0) and keeps the
// outer UDP checksum, if there is one, right: what a NIC that got the
// inner checksum wrong and computed the outer one over its result puts on
// the wire. The kernel is not told: the frame stays as complete as it
// came (the fault makes the LAN hand the node complete frames, see
// planBadChecksum), so the overlay's stack verifies the inner checksum
// and drops the packet. Everything else passes untouched; the program
// always returns TC_ACT_OK.
//
// Offsets: the frame is Ethernet + IPv4 (IHL) + UDP (8) + VXLAN (8) +
// Ethernet + IPv4 (IHL) + TCP (checksum at 16) or UDP (at 6). The bytes
// are read with bpf_skb_load_bytes into the stack and written back with
// bpf_skb_store_bytes (flags 0: no checksum is updated).

// Stack slots (from the frame pointer).
const (
	bcHdr    = -64 // 34 bytes: Ethernet + IPv4 without options
	bcUDP    = -24 // 8 bytes: the outer UDP header
	bcOuter  = -16 // 8 bytes: the outer UDP header's offset
	bcOldSum = -10 // 2 bytes: the inner checksum as it came
	bcSum    = -8  // 2 bytes: the inner checksum
	bcPass   = "pass"
)

// bpf_l4_csum_replace's flags: a 2-byte field, and a UDP checksum that
// comes out 0 is written as 0xffff (BPF_F_MARK_MANGLED_0).
const bcReplaceFlags = 0x20 | 2

// Byte values as the program compares them: a 16-bit load from the stack
// is little-endian, so network-order 0x0800 reads as 0x0008.
const (
	leIPv4      = 0x0008 // ETH_P_IP
	leVXLANPort = 0xb512 // 4789
)

func badChecksumProgram() asm.Instructions {
	// load reads n bytes at offset off of the frame into slot; its first
	// instruction is labelled sym (if not "").
	load := func(off asm.Register, slot int16, n int32, sym string) asm.Instructions {
		first := asm.Mov.Reg(asm.R1, asm.R6)
		if sym != "" {
			first = first.WithSymbol(sym)
		}
		return asm.Instructions{
			first,
			asm.Mov.Reg(asm.R2, off),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, int32(slot)),
			asm.Mov.Imm(asm.R4, n),
			asm.FnSkbLoadBytes.Call(),
			asm.JNE.Imm(asm.R0, 0, bcPass),
		}
	}
	// ipv4 checks the Ethernet + IPv4 header at bcHdr: IPv4, not a
	// fragment, protocol into R8, header length into R9.
	ipv4 := asm.Instructions{
		asm.LoadMem(asm.R2, asm.RFP, bcHdr+12, asm.Half),
		asm.JNE.Imm(asm.R2, leIPv4, bcPass),
		asm.LoadMem(asm.R2, asm.RFP, bcHdr+20, asm.Byte), // flags, fragment offset high bits
		asm.And.Imm(asm.R2, 0x1f),
		asm.JNE.Imm(asm.R2, 0, bcPass),
		asm.LoadMem(asm.R2, asm.RFP, bcHdr+21, asm.Byte),
		asm.JNE.Imm(asm.R2, 0, bcPass),
		asm.LoadMem(asm.R8, asm.RFP, bcHdr+23, asm.Byte),
		asm.LoadMem(asm.R9, asm.RFP, bcHdr+14, asm.Byte),
		asm.And.Imm(asm.R9, 0x0f),
		asm.LSh.Imm(asm.R9, 2),
	}
	var p asm.Instructions
	p = append(p, asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm(asm.R7, 0))
	// The outer frame: IPv4, UDP, to the VXLAN port.
	p = append(p, load(asm.R7, bcHdr, 34, "")...)
	p = append(p, ipv4...)
	p = append(p,
		asm.JNE.Imm(asm.R8, 17, bcPass),
		asm.Add.Imm(asm.R9, 14),
		asm.Mov.Reg(asm.R7, asm.R9), // R7: the outer UDP header
	)
	p = append(p, load(asm.R7, bcUDP, 8, "")...)
	p = append(p,
		asm.LoadMem(asm.R2, asm.RFP, bcUDP+2, asm.Half),
		asm.JNE.Imm(asm.R2, leVXLANPort, bcPass),
		asm.StoreMem(asm.RFP, bcOuter, asm.R7, asm.DWord),
		asm.Add.Imm(asm.R7, 16), // R7: the inner Ethernet header
	)
	// The inner packet: IPv4, TCP or UDP.
	p = append(p, load(asm.R7, bcHdr, 34, "")...)
	p = append(p, ipv4...)
	p = append(p,
		asm.Add.Reg(asm.R7, asm.R9),
		asm.Add.Imm(asm.R7, 14), // R7: the inner L4 header
		asm.JEq.Imm(asm.R8, 6, "tcp"),
		asm.JNE.Imm(asm.R8, 17, bcPass),
		asm.Add.Imm(asm.R7, 6),
		asm.Ja.Label("sum"),
		asm.Add.Imm(asm.R7, 16).WithSymbol("tcp"),
	)
	p = append(p, load(asm.R7, bcSum, 2, "sum")...)
	p = append(p,
		asm.LoadMem(asm.R2, asm.RFP, bcSum, asm.Half),
		asm.StoreMem(asm.RFP, bcOldSum, asm.R2, asm.Half),
		asm.LoadMem(asm.R2, asm.RFP, bcSum, asm.Byte),
		asm.LoadMem(asm.R3, asm.RFP, bcSum+1, asm.Byte),
		// UDP without a checksum (0) stays without one.
		asm.JNE.Imm(asm.R8, 17, "flip"),
		asm.JNE.Imm(asm.R2, 0, "flip"),
		asm.JEq.Imm(asm.R3, 0, bcPass),
		asm.Xor.Imm(asm.R2, 0x01).WithSymbol("flip"),
		// 0x0100 would become 0: "no checksum" for UDP.
		asm.JNE.Imm(asm.R2, 0, "store"),
		asm.JNE.Imm(asm.R3, 0, "store"),
		asm.Mov.Imm(asm.R2, 0x03),
		asm.StoreMem(asm.RFP, bcSum, asm.R2, asm.Byte).WithSymbol("store"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, bcSum),
		asm.Mov.Imm(asm.R4, 2),
		asm.Mov.Imm(asm.R5, 0),
		asm.FnSkbStoreBytes.Call(),
		// The outer UDP checksum (when there is one: VXLAN's udpcsum)
		// covers the inner one: keep it right, as a NIC that computes
		// it over the inner packet it got wrong, so the frame reaches
		// the overlay and the inner stack is the one that drops it.
		asm.LoadMem(asm.R2, asm.RFP, bcUDP+6, asm.Half),
		asm.JEq.Imm(asm.R2, 0, bcPass),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMem(asm.R2, asm.RFP, bcOuter, asm.DWord),
		asm.Add.Imm(asm.R2, 6),
		asm.LoadMem(asm.R3, asm.RFP, bcOldSum, asm.Half),
		asm.LoadMem(asm.R4, asm.RFP, bcSum, asm.Half),
		asm.Mov.Imm(asm.R5, bcReplaceFlags),
		asm.FnL4CsumReplace.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol(bcPass), // TC_ACT_OK
		asm.Return(),
	)
	return p
}
