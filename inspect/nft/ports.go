//go:build linux

package nft

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/meshtrace/meshtrace/topology"
)

// tcpudp is the "-m tcp"/"-m udp" match iptables-nft rebuilds from native
// transport-header expressions (or from an xt tcp/udp match): one per rule,
// reused by later port expressions, printed where it was first created.
type tcpudp struct {
	name       string // "tcp" or "udp"
	idx        int    // position in Rule.Matches
	spts, dpts [2]uint16
	sinv, dinv bool
	option     uint8
	optInv     bool
	flgMask    uint8
	flgCmp     uint8
	flgInv     bool
}

// match renders it as libxt_tcp/libxt_udp's save does: --sport, --dport,
// then (tcp) --tcp-option and --tcp-flags, each only when not the default.
func (t *tcpudp) match() topology.Match {
	m := topology.Match{Name: t.name}
	if t.spts != [2]uint16{0, 0xffff} {
		m.Opts = append(m.Opts, topology.Option{Name: "sport", Neg: t.sinv, Args: []string{portRange(t.spts[0], t.spts[1])}})
	}
	if t.dpts != [2]uint16{0, 0xffff} {
		m.Opts = append(m.Opts, topology.Option{Name: "dport", Neg: t.dinv, Args: []string{portRange(t.dpts[0], t.dpts[1])}})
	}
	if t.name != "tcp" {
		return m
	}
	if t.option != 0 || t.optInv {
		m.Opts = append(m.Opts, topology.Option{Name: "tcp-option", Neg: t.optInv, Args: []string{itoa(int(t.option))}})
	}
	if t.flgMask != 0 || t.flgInv {
		m.Opts = append(m.Opts, topology.Option{Name: "tcp-flags", Neg: t.flgInv,
			Args: []string{tcpFlags(t.flgMask), tcpFlags(t.flgCmp)}})
	}
	return m
}

// tcpFlagNames is libxt_tcp's table; print_tcpf names each set bit by the
// first entry that has it, so ALL is never printed.
var tcpFlagNames = []flagName{{0x01, "FIN"}, {0x02, "SYN"}, {0x04, "RST"}, {0x08, "PSH"}, {0x10, "ACK"}, {0x20, "URG"}}

func tcpFlags(f uint8) string {
	if f == 0 {
		return "NONE"
	}
	return joinFlags(uint32(f), tcpFlagNames)
}

// portMatch returns the rule's tcp/udp match, creating it at the current
// position. name is "tcp" or "udp".
func (d *ruleDecoder) portMatch(name string) *tcpudp {
	if d.ports != nil && d.ports.name == name {
		return d.ports
	}
	if d.ports != nil {
		// A second, different one: flush the first and start anew.
		d.r.Matches[d.ports.idx] = d.ports.match()
	}
	d.ports = &tcpudp{name: name, idx: len(d.r.Matches), spts: [2]uint16{0, 0xffff}, dpts: [2]uint16{0, 0xffff}}
	d.r.Matches = append(d.r.Matches, topology.Match{Name: name})
	return d.ports
}

// l4name is the match name for the rule's (non-negated) -p, or "".
func (d *ruleDecoder) l4name() string {
	if d.protoNeg {
		return ""
	}
	switch d.proto {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return ""
}

func (d *ruleDecoder) transportCmp(c load, op expr.CmpOp, data []byte) {
	name := d.l4name()
	if name == "" {
		d.undecoded("transport", "transport header match without -p tcp/udp")
		return
	}
	switch {
	case c.offset == 0 && c.length == 4 && c.mask == nil && len(data) == 4:
		// --sport X --dport Y folded into one 32-bit compare.
		neg, ok := d.negOp(op, "ports")
		if !ok {
			return
		}
		t := d.portMatch(name)
		s, p := binary.BigEndian.Uint16(data[0:2]), binary.BigEndian.Uint16(data[2:4])
		t.spts, t.dpts, t.sinv, t.dinv = [2]uint16{s, s}, [2]uint16{p, p}, neg, neg
	case (c.offset == 0 || c.offset == 2) && c.length == 2 && c.mask == nil && len(data) == 2:
		v := binary.BigEndian.Uint16(data)
		var pr [2]uint16
		inv := false
		switch op {
		case expr.CmpOpEq:
			pr = [2]uint16{v, v}
		case expr.CmpOpNeq:
			pr, inv = [2]uint16{v, v}, true
		case expr.CmpOpLt:
			if v == 0 {
				d.undecoded("port", "port < 0")
				return
			}
			pr = [2]uint16{0, v - 1}
		case expr.CmpOpLte:
			pr = [2]uint16{0, v}
		case expr.CmpOpGt:
			if v == 0xffff {
				d.undecoded("port", "port > 65535")
				return
			}
			pr = [2]uint16{v + 1, 0xffff}
		case expr.CmpOpGte:
			pr = [2]uint16{v, 0xffff}
		default:
			d.undecoded("port", "port compared with operator %d", op)
			return
		}
		d.setPorts(name, c.offset, pr, inv)
	case c.offset == 13 && c.length == 1 && name == "tcp" && len(data) == 1:
		neg, ok := d.negOp(op, "tcp flags")
		if !ok {
			return
		}
		mask := uint8(0xff)
		if len(c.mask) == 1 {
			mask = c.mask[0]
		}
		t := d.portMatch(name)
		t.flgMask, t.flgCmp, t.flgInv = mask, data[0], neg
	default:
		d.undecoded("transport", "cmp on transport header offset %d length %d", c.offset, c.length)
	}
}

func (d *ruleDecoder) setPorts(name string, offset uint32, pr [2]uint16, inv bool) {
	t := d.portMatch(name)
	if offset == 0 {
		t.spts, t.sinv = pr, inv
	} else {
		t.dpts, t.dinv = pr, inv
	}
}

func (d *ruleDecoder) rangeExpr(e *expr.Range) {
	c := d.cur
	if c.kind != loadPayload || c.base != expr.PayloadBaseTransportHeader ||
		(c.offset != 0 && c.offset != 2) || c.length != 2 || c.mask != nil ||
		len(e.FromData) != 2 || len(e.ToData) != 2 {
		d.undecoded("range", "range on something other than a port")
		return
	}
	name := d.l4name()
	if name == "" {
		d.undecoded("transport", "port range without -p tcp/udp")
		return
	}
	neg, ok := d.negOp(e.Op, "port range")
	if !ok {
		return
	}
	d.setPorts(name, c.offset, [2]uint16{binary.BigEndian.Uint16(e.FromData), binary.BigEndian.Uint16(e.ToData)}, neg)
}
