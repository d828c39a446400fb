package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables/expr"
	"github.com/meshtrace/meshtrace/topology"
)

// Marker put into a rule where something could not be decoded, so the
// rule stays visible (and Evaluate sees an unknown match) instead of being
// silently widened.
const undecodedOpt = "nft-undecoded"

// load is the value the last meta/payload expression put in a register
// (iptables-nft uses register 1), with the mask of a following bitwise,
// waiting for its cmp/range.
type load struct {
	kind   int // 0 none, loadMeta, loadPayload
	reg    uint32
	key    expr.MetaKey
	base   expr.PayloadBase
	offset uint32
	length uint32
	mask   []byte
}

const (
	loadMeta = iota + 1
	loadPayload
)

// ruleDecoder walks one rule's expressions the way iptables-nft's
// nft_rule_to_iptables_command_state does.
type ruleDecoder struct {
	r        *topology.Rule
	cur      load
	proto    int // -1 unknown
	protoNeg bool
	// ports holds the native (or xt) tcp/udp match being built; its
	// position in r.Matches is ports.idx.
	ports    *tcpudp
	probs    []string
	targeted bool
	sets     *SetNames
}

// DecodeRule turns one nf_tables rule into the iptables rule iptables-save
// would print, plus the problems met (empty when fully decoded). Text is
// set with Render. Set matches stay undecoded: their set names are looked
// up per namespace (Decode uses the Dump's).
func DecodeRule(chain string, exprs []any, userData []byte) (*topology.Rule, []string) {
	return decodeRule(chain, exprs, userData, nil)
}

func decodeRule(chain string, exprs []any, userData []byte, sets *SetNames) (*topology.Rule, []string) {
	d := &ruleDecoder{r: &topology.Rule{Chain: chain}, proto: -1, sets: sets}
	for _, e := range exprs {
		d.expr(e)
	}
	if d.ports != nil {
		d.r.Matches[d.ports.idx] = d.ports.match()
	}
	if c, ok := udataComment(userData); ok {
		d.r.Matches = append(d.r.Matches, topology.Match{Name: "comment",
			Opts: []topology.Option{{Name: "comment", Args: []string{c}, Quoted: saveQuoted(c)}}})
	}
	d.r.Text = d.r.Render()
	return d.r, d.probs
}

func (d *ruleDecoder) problem(format string, a ...any) {
	d.probs = append(d.probs, fmt.Sprintf(format, a...))
}

// undecoded records an expression that was not understood and marks the
// rule with a pseudo match naming it.
func (d *ruleDecoder) undecoded(what string, format string, a ...any) {
	d.problem(format, a...)
	d.r.Matches = append(d.r.Matches, topology.Match{Name: "nft",
		Opts: []topology.Option{{Name: undecodedOpt, Args: []string{what}}}})
}

func (d *ruleDecoder) expr(e any) {
	switch e := e.(type) {
	case *expr.Counter:
		d.r.HasCounters = true
		d.r.Packets, d.r.Bytes = e.Packets, e.Bytes
	case *expr.Meta:
		if e.SourceRegister {
			d.undecoded("meta-set", "meta set of key %d (not an iptables match)", e.Key)
			return
		}
		d.cur = load{kind: loadMeta, key: e.Key, reg: e.Register}
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad {
			d.undecoded("payload-write", "payload write at base %d offset %d", e.Base, e.Offset)
			return
		}
		d.cur = load{kind: loadPayload, base: e.Base, offset: e.Offset, length: e.Len, reg: e.DestRegister}
	case *expr.Bitwise:
		if d.cur.kind == 0 || e.SourceRegister != d.cur.reg {
			d.undecoded("bitwise", "bitwise without a preceding load into its register")
			d.cur = load{}
			return
		}
		for _, x := range e.Xor {
			if x != 0 {
				d.undecoded("bitwise", "bitwise with non-zero xor")
				d.cur = load{}
				return
			}
		}
		d.cur.mask, d.cur.reg = e.Mask, e.DestRegister
	case *expr.Cmp:
		if d.cur.kind != 0 && e.Register != d.cur.reg {
			d.undecoded("cmp", "cmp on register %d, the load was into %d", e.Register, d.cur.reg)
		} else {
			d.cmp(e.Op, e.Data)
		}
		d.cur = load{}
	case *expr.Range:
		if d.cur.kind != 0 && e.Register != d.cur.reg {
			d.undecoded("range", "range on register %d, the load was into %d", e.Register, d.cur.reg)
		} else {
			d.rangeExpr(e)
		}
		d.cur = load{}
	case *expr.Verdict:
		d.verdict(e)
	case *expr.Immediate:
		d.undecoded("immediate", "immediate data into register %d", e.Register)
	case *XTMatch:
		d.match(e)
	case *XTTarget:
		d.target(e)
	case *UnknownExpr:
		if e.Err != nil {
			d.undecoded(e.Name, "expression %s: %v", e.Name, e.Err)
		} else {
			d.undecoded(e.Name, "unsupported expression %s", e.Name)
		}
	default:
		d.undecoded(fmt.Sprintf("%T", e), "unsupported expression %T", e)
	}
}

func (d *ruleDecoder) setTarget(name string, goTo bool, opts []topology.Option) {
	if d.targeted {
		d.problem("second verdict/target %s after %s", name, d.r.Target)
	}
	d.targeted = true
	d.r.Target, d.r.Goto, d.r.TargetOpts = name, goTo, opts
}

func (d *ruleDecoder) verdict(v *expr.Verdict) {
	switch v.Kind {
	case expr.VerdictAccept:
		d.setTarget("ACCEPT", false, nil)
	case expr.VerdictDrop:
		d.setTarget("DROP", false, nil)
	case expr.VerdictReturn:
		d.setTarget("RETURN", false, nil)
	case expr.VerdictJump:
		d.setTarget(v.Chain, false, nil)
	case expr.VerdictGoto:
		d.setTarget(v.Chain, true, nil)
	default:
		d.undecoded("verdict", "verdict %d is not an iptables target", v.Kind)
	}
}

// cmp consumes the pending load.
func (d *ruleDecoder) cmp(op expr.CmpOp, data []byte) {
	c := d.cur
	switch {
	case c.kind == 0:
		d.undecoded("cmp", "cmp without a preceding load")
	case c.kind == loadMeta:
		d.metaCmp(c, op, data)
	case c.base == expr.PayloadBaseNetworkHeader:
		d.networkCmp(c, op, data)
	case c.base == expr.PayloadBaseTransportHeader:
		d.transportCmp(c, op, data)
	default:
		d.undecoded("payload", "cmp on payload base %d offset %d", c.base, c.offset)
	}
}

// negOp maps eq/neq to the "!" flag; other operators are not iptables'.
func (d *ruleDecoder) negOp(op expr.CmpOp, what string) (neg, ok bool) {
	switch op {
	case expr.CmpOpEq:
		return false, true
	case expr.CmpOpNeq:
		return true, true
	}
	d.undecoded(what, "%s compared with operator %d", what, op)
	return false, false
}

func (d *ruleDecoder) metaCmp(c load, op expr.CmpOp, data []byte) {
	switch c.key {
	case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME:
		neg, ok := d.negOp(op, "interface")
		if !ok {
			return
		}
		n := &topology.Negatable{Neg: neg, Value: ifname(data)}
		dst := &d.r.InIface
		if c.key == expr.MetaKeyOIFNAME {
			dst = &d.r.OutIface
		}
		if *dst != nil {
			d.problem("interface matched twice")
		}
		*dst = n
	case expr.MetaKeyL4PROTO:
		d.protoCmp(op, data)
	case expr.MetaKeyMARK:
		neg, ok := d.negOp(op, "mark")
		if !ok || len(data) != 4 {
			if ok {
				d.undecoded("mark", "mark compared with %d bytes", len(data))
			}
			return
		}
		mark := binary.NativeEndian.Uint32(data)
		arg := hexU32(mark)
		if c.mask != nil {
			if len(c.mask) != 4 {
				d.undecoded("mark", "mark mask of %d bytes", len(c.mask))
				return
			}
			arg += "/" + hexU32(binary.NativeEndian.Uint32(c.mask))
		}
		d.r.Matches = append(d.r.Matches, topology.Match{Name: "mark",
			Opts: []topology.Option{{Name: "mark", Neg: neg, Args: []string{arg}}}})
	default:
		d.undecoded("meta", "cmp on meta key %d", c.key)
	}
}

// ifname decodes iptables-nft's interface compare: the name with its NUL
// is an exact match, without it a prefix ("eth+").
func ifname(data []byte) string {
	if n := len(data); n > 0 && data[n-1] == 0 {
		return cString(data)
	}
	return cString(data) + "+"
}

func (d *ruleDecoder) protoCmp(op expr.CmpOp, data []byte) {
	neg, ok := d.negOp(op, "protocol")
	if !ok {
		return
	}
	if len(data) != 1 {
		d.undecoded("protocol", "protocol compared with %d bytes", len(data))
		return
	}
	if d.r.Proto != nil {
		d.problem("protocol matched twice")
	}
	d.proto, d.protoNeg = int(data[0]), neg
	d.r.Proto = &topology.Negatable{Neg: neg, Value: protoName(data[0])}
}

func (d *ruleDecoder) networkCmp(c load, op expr.CmpOp, data []byte) {
	switch {
	case c.offset == 9 && c.length == 1 && c.mask == nil:
		d.protoCmp(op, data)
	case (c.offset == 12 || c.offset == 16) && c.length >= 1 && c.length <= 4 && len(data) == int(c.length):
		neg, ok := d.negOp(op, "address")
		if !ok {
			return
		}
		var addr, mask [4]byte
		copy(addr[:], data)
		if c.mask != nil {
			copy(mask[:], c.mask)
		} else {
			for i := 0; i < int(c.length); i++ {
				mask[i] = 0xff
			}
		}
		n := &topology.Negatable{Neg: neg, Value: saveAddr(addr, mask)}
		dst := &d.r.Src
		if c.offset == 16 {
			dst = &d.r.Dst
		}
		if *dst != nil {
			d.problem("address matched twice")
		}
		*dst = n
	case c.offset == 6 && c.length == 2 && len(c.mask) == 2 && c.mask[0] == 0x1f && c.mask[1] == 0xff &&
		len(data) == 2 && data[0] == 0 && data[1] == 0:
		// -f: fragment offset != 0; ! -f: == 0.
		neg, ok := d.negOp(op, "fragment")
		if !ok {
			return
		}
		d.r.Fragment = &topology.Negatable{Neg: !neg}
	default:
		d.undecoded("payload", "cmp on network header offset %d length %d", c.offset, c.length)
	}
}
