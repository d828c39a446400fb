//go:build linux

package nft

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Decoding of nf_tables netlink messages (NFT_MSG_NEWTABLE/NEWCHAIN/NEWRULE
// as a dump returns them) into Dump values; pure, so tests feed captured
// bytes. Expressions land in github.com/google/nftables/expr types, but the
// attributes are walked here without copying: the library's
// expr.Unmarshal goes through mdlayher/netlink's AttributeDecoder, which
// copies every attribute and was two thirds of the allocations of a read.

// nfgenmsg is the 4-byte header before the attributes: family, version and
// res_id, which in dump replies carries the low 16 bits of the ruleset
// generation.
type nfgenmsg struct {
	family uint8
	genID  uint16
}

func parseGenmsg(data []byte) (nfgenmsg, []byte, error) {
	if len(data) < 4 {
		return nfgenmsg{}, nil, fmt.Errorf("message of %d bytes is shorter than nfgenmsg", len(data))
	}
	return nfgenmsg{family: data[0], genID: binary.BigEndian.Uint16(data[2:4])}, data[4:], nil
}

// dumpMessages are the dumps a read makes, in order.
var dumpMessages = []uint16{unix.NFT_MSG_GETTABLE, unix.NFT_MSG_GETCHAIN, unix.NFT_MSG_GETRULE}

func msgName(msg uint16) string {
	switch msg {
	case unix.NFT_MSG_GETTABLE:
		return "tables"
	case unix.NFT_MSG_GETCHAIN:
		return "chains"
	case unix.NFT_MSG_GETRULE:
		return "rules"
	}
	return fmt.Sprintf("message type %d", msg)
}

// dumpBuilder collects the replies of the three dumps into a Dump and
// notes whether they all came from one ruleset generation.
type dumpBuilder struct {
	d          Dump
	gen        uint16
	seen       bool
	consistent bool
}

func newDumpBuilder() *dumpBuilder { return &dumpBuilder{consistent: true} }

// add decodes one reply payload (nfgenmsg + attributes) of the dump msg.
func (b *dumpBuilder) add(msg uint16, data []byte) error {
	g, attrs, err := parseGenmsg(data)
	if err != nil {
		return err
	}
	if !b.seen {
		b.gen, b.seen = g.genID, true
	} else if g.genID != b.gen {
		b.consistent = false
	}
	switch msg {
	case unix.NFT_MSG_GETTABLE:
		t, err := parseTable(attrs)
		if err != nil {
			return err
		}
		b.d.Tables = append(b.d.Tables, t)
	case unix.NFT_MSG_GETCHAIN:
		c, err := parseChain(attrs)
		if err != nil {
			return err
		}
		b.d.Chains = append(b.d.Chains, c)
	case unix.NFT_MSG_GETRULE:
		r, err := parseRule(attrs)
		if err != nil {
			return err
		}
		b.d.Rules = append(b.d.Rules, r)
	default:
		return fmt.Errorf("unexpected dump %d", msg)
	}
	return nil
}

const (
	nlaTypeMask   = 0x3fff // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER
	nftaBitwiseOp = 6      // NFTA_BITWISE_OP (not in x/sys/unix)
)

// attrs iterates over netlink attributes without copying them.
type attrs struct {
	b   []byte
	typ uint16
	val []byte
	err error
}

func (a *attrs) next() bool {
	if a.err != nil || len(a.b) == 0 {
		return false
	}
	if len(a.b) < 4 {
		a.err = fmt.Errorf("%d trailing bytes after the last attribute", len(a.b))
		return false
	}
	l := int(binary.NativeEndian.Uint16(a.b))
	if l < 4 || l > len(a.b) {
		a.err = fmt.Errorf("attribute length %d in %d bytes", l, len(a.b))
		return false
	}
	a.typ = binary.NativeEndian.Uint16(a.b[2:]) & nlaTypeMask
	a.val = a.b[4:l:l]
	if al := (l + 3) &^ 3; al < len(a.b) {
		a.b = a.b[al:]
	} else {
		a.b = nil
	}
	return true
}

// u32 and u64 read big-endian attribute values; a wrong size is an error.
func (a *attrs) u32() uint32 {
	if len(a.val) != 4 {
		a.fail("4")
		return 0
	}
	return binary.BigEndian.Uint32(a.val)
}

func (a *attrs) u64() uint64 {
	if len(a.val) != 8 {
		a.fail("8")
		return 0
	}
	return binary.BigEndian.Uint64(a.val)
}

func (a *attrs) str() string { return cString(a.val) }

func (a *attrs) fail(size string) {
	if a.err == nil {
		a.err = fmt.Errorf("attribute %d has %d bytes, want %s", a.typ, len(a.val), size)
	}
}

// data returns the NFTA_DATA_VALUE inside a nested nft_data attribute.
func (a *attrs) data() []byte {
	in := attrs{b: a.val}
	for in.next() {
		if in.typ == unix.NFTA_DATA_VALUE {
			return in.val
		}
	}
	if in.err != nil && a.err == nil {
		a.err = in.err
	}
	return nil
}

// parseTable returns the table name of an NFT_MSG_NEWTABLE payload.
func parseTable(b []byte) (string, error) {
	a := attrs{b: b}
	var name string
	for a.next() {
		if a.typ == unix.NFTA_TABLE_NAME {
			name = a.str()
		}
	}
	if a.err != nil {
		return "", a.err
	}
	if name == "" {
		return "", errors.New("table without a name")
	}
	return name, nil
}

// parseChain decodes an NFT_MSG_NEWCHAIN payload.
func parseChain(b []byte) (RawChain, error) {
	var c RawChain
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_CHAIN_TABLE:
			c.Table = a.str()
		case unix.NFTA_CHAIN_NAME:
			c.Name = a.str()
		case unix.NFTA_CHAIN_POLICY:
			c.Policy = a.u32()
		case unix.NFTA_CHAIN_HOOK:
			c.Base = true
			h := attrs{b: a.val}
			for h.next() {
				if h.typ == unix.NFTA_HOOK_HOOKNUM {
					c.Hook = h.u32()
				}
			}
			a.err = h.err
		case unix.NFTA_CHAIN_COUNTERS:
			// The same NFTA_COUNTER_* attributes as a counter expression.
			var n *expr.Counter
			if n, a.err = parseCounter(a.val); a.err == nil {
				c.Packets, c.Bytes = n.Packets, n.Bytes
			}
		}
	}
	if a.err != nil {
		return c, a.err
	}
	if c.Table == "" || c.Name == "" {
		return c, errors.New("chain without table or name")
	}
	return c, nil
}

// parseRule decodes an NFT_MSG_NEWRULE payload. An expression that cannot
// be decoded becomes an *UnknownExpr (reported later), never an error that
// loses the whole rule; only a malformed message is an error. The returned
// rule aliases b.
func parseRule(b []byte) (RawRule, error) {
	var r RawRule
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_RULE_TABLE:
			r.Table = a.str()
		case unix.NFTA_RULE_CHAIN:
			r.Chain = a.str()
		case unix.NFTA_RULE_HANDLE:
			r.Handle = a.u64()
		case unix.NFTA_RULE_USERDATA:
			r.UserData = a.val
		case unix.NFTA_RULE_EXPRESSIONS:
			l := attrs{b: a.val}
			for l.next() {
				if l.typ == unix.NFTA_LIST_ELEM {
					r.Exprs = append(r.Exprs, parseExpr(l.val))
				}
			}
			a.err = l.err
		}
	}
	if a.err != nil {
		return r, a.err
	}
	if r.Table == "" || r.Chain == "" {
		return r, errors.New("rule without table or chain")
	}
	return r, nil
}
