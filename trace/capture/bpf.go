package capture

import (
	"fmt"
	"slices"

	"golang.org/x/net/bpf"

	"github.com/meshtrace/meshtrace/trace"
)

// snapLen is what the filter keeps of a packet: all of it.
const snapLen = 262144

// Offsets in an Ethernet frame (outer IPv4 header without options for
// VXLAN, which is what the kernel sends).
const (
	offEtherType = 12
	offIP        = 14
	offInnerEth  = offIP + 20 + 8 + 8
	offInnerIP   = offInnerEth + 14
)

// Program returns the classic BPF program for an Ethernet link. dir
// trace.DirOut keeps only packets the interface sent (skb->pkt_type ==
// PACKET_OUTGOING), trace.DirIn only the others, DirUnknown both: one socket per
// direction is how trace learns which way a packet went. terminal (an
// interface that is no bridge port: trace.Point.Terminal) makes DirIn also
// refuse PACKET_OTHERHOST, the frames a bridge flooded there that the IP
// stack drops on arrival.
func Program(s trace.FilterSpec, dir trace.Dir, terminal bool) ([]bpf.Instruction, error) {
	if s.Proto != trace.ProtoTCP && s.Proto != trace.ProtoUDP {
		return nil, fmt.Errorf("bpf filter: protocol %d: want tcp or udp", s.Proto)
	}
	if len(s.Ports) == 0 {
		return nil, fmt.Errorf("bpf filter: no ports")
	}
	if len(s.Ports) > 60 {
		return nil, fmt.Errorf("bpf filter: %d ports: at most 60", len(s.Ports))
	}
	ports := slices.Clone(s.Ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	a := &asm{labels: map[string]int{}}
	switch dir {
	case trace.DirOut:
		a.add(bpf.LoadExtension{Num: bpf.ExtType})
		a.jeq(4, "", "reject") // PACKET_OUTGOING
	case trace.DirIn:
		a.add(bpf.LoadExtension{Num: bpf.ExtType})
		a.jeq(4, "reject", "")
		if terminal {
			a.jeq(3, "reject", "") // PACKET_OTHERHOST
		}
	}
	a.add(bpf.LoadAbsolute{Off: offEtherType, Size: 2})
	a.jeq(0x0800, "", "reject")
	a.add(bpf.LoadAbsolute{Off: offIP + 6, Size: 2})
	a.jset(0x1fff, "reject", "")
	a.add(bpf.LoadAbsolute{Off: offIP + 9, Size: 1})
	if s.ESP {
		a.jeq(trace.ProtoESP, "accept", "")
	}
	if s.VXLAN || s.Proto == trace.ProtoUDP {
		a.jeq(trace.ProtoUDP, "udp", "")
	}
	if s.Proto == trace.ProtoTCP {
		a.jeq(trace.ProtoTCP, "l4", "reject")
	} else {
		a.jmp("reject")
	}
	a.label("udp")
	if s.VXLAN {
		a.add(bpf.LoadMemShift{Off: offIP})
		a.add(bpf.LoadIndirect{Off: offIP + 2, Size: 2})
		a.jeq(trace.VXLANPort, "vxlan", "")
	}
	if s.Proto == trace.ProtoUDP {
		a.jmp("l4")
	} else {
		a.jmp("reject")
	}
	a.label("l4")
	a.add(bpf.LoadMemShift{Off: offIP})
	a.ports(offIP, ports)
	if s.VXLAN {
		a.label("vxlan")
		a.add(bpf.LoadAbsolute{Off: offIP, Size: 1})
		a.jeq(0x45, "", "reject")
		a.add(bpf.LoadAbsolute{Off: offInnerEth + offEtherType, Size: 2})
		a.jeq(0x0800, "", "reject")
		a.add(bpf.LoadAbsolute{Off: offInnerIP + 6, Size: 2})
		a.jset(0x1fff, "reject", "")
		a.add(bpf.LoadAbsolute{Off: offInnerIP + 9, Size: 1})
		a.jeq(uint32(s.Proto), "", "reject")
		a.add(bpf.LoadMemShift{Off: offInnerIP})
		a.ports(offInnerIP, ports)
	}
	a.label("accept")
	a.add(bpf.RetConstant{Val: snapLen})
	a.label("reject")
	a.add(bpf.RetConstant{Val: 0})
	return a.resolve()
}

// Assemble returns the program in the kernel's encoding.
func Assemble(s trace.FilterSpec, dir trace.Dir, terminal bool) ([]bpf.RawInstruction, error) {
	p, err := Program(s, dir, terminal)
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(p)
}

// asm builds a program with symbolic jump targets.
type asm struct {
	ins    []bpf.Instruction
	jumps  []jump
	labels map[string]int
}

type jump struct {
	at          int
	onTrue, alt string // "" = fall through
	always      bool
}

func (a *asm) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(l string) { a.labels[l] = len(a.ins) }

func (a *asm) jeq(v uint32, t, f string) {
	a.jumps = append(a.jumps, jump{at: len(a.ins), onTrue: t, alt: f})
	a.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: v})
}

func (a *asm) jset(v uint32, t, f string) {
	a.jumps = append(a.jumps, jump{at: len(a.ins), onTrue: t, alt: f})
	a.add(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: v})
}

func (a *asm) jmp(t string) {
	a.jumps = append(a.jumps, jump{at: len(a.ins), onTrue: t, always: true})
	a.add(bpf.Jump{})
}

// ports accepts the packet when its source or destination port (at X+off)
// is one of ps.
func (a *asm) ports(off uint32, ps []uint16) {
	for _, field := range []uint32{off, off + 2} {
		a.add(bpf.LoadIndirect{Off: field, Size: 2})
		for _, p := range ps {
			a.jeq(uint32(p), "accept", "")
		}
	}
	a.jmp("reject")
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	skip := func(from int, l string) (int, error) {
		if l == "" {
			return 0, nil
		}
		to, ok := a.labels[l]
		if !ok {
			return 0, fmt.Errorf("bpf filter: undefined label %q", l)
		}
		d := to - from - 1
		if d < 0 {
			return 0, fmt.Errorf("bpf filter: backward jump to %q", l)
		}
		return d, nil
	}
	for _, j := range a.jumps {
		t, err := skip(j.at, j.onTrue)
		if err != nil {
			return nil, err
		}
		if j.always {
			a.ins[j.at] = bpf.Jump{Skip: uint32(t)}
			continue
		}
		f, err := skip(j.at, j.alt)
		if err != nil {
			return nil, err
		}
		if t > 255 || f > 255 {
			return nil, fmt.Errorf("bpf filter: jump too far (%d/%d)", t, f)
		}
		ji := a.ins[j.at].(bpf.JumpIf)
		ji.SkipTrue, ji.SkipFalse = uint8(t), uint8(f)
		a.ins[j.at] = ji
	}
	return a.ins, nil
}
