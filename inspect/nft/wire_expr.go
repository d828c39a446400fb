//go:build linux

package nft

import (
	"errors"
	"fmt"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Decoding of the expressions of a rule (NFTA_LIST_ELEM), zero-copy, into
// github.com/google/nftables/expr values.

// parseExpr decodes one NFTA_LIST_ELEM: the native expressions iptables-nft
// uses, match/target with their raw Info, anything else as *UnknownExpr.
func parseExpr(b []byte) any {
	var name string
	var data []byte
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_EXPR_NAME:
			name = a.str()
		case unix.NFTA_EXPR_DATA:
			data = a.val
		}
	}
	if a.err != nil {
		return &UnknownExpr{Name: name, Err: a.err}
	}
	var e any
	var err error
	switch name {
	case "match", "target":
		e, err = parseXT(name, data)
	case "immediate":
		e, err = parseImmediate(data)
	case "counter":
		e, err = parseCounter(data)
	case "meta":
		e, err = parseMeta(data)
	case "payload":
		e, err = parsePayload(data)
	case "bitwise":
		e, err = parseBitwise(data)
	case "cmp":
		e, err = parseCmp(data)
	case "range":
		e, err = parseRange(data)
	default:
		return &UnknownExpr{Name: name}
	}
	if err != nil {
		return &UnknownExpr{Name: name, Err: err}
	}
	return e
}

func parseCounter(b []byte) (*expr.Counter, error) {
	e := &expr.Counter{}
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_COUNTER_BYTES:
			e.Bytes = a.u64()
		case unix.NFTA_COUNTER_PACKETS:
			e.Packets = a.u64()
		}
	}
	return e, a.err
}

func parseMeta(b []byte) (*expr.Meta, error) {
	e := &expr.Meta{}
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_META_DREG:
			e.Register = a.u32()
		case unix.NFTA_META_SREG:
			e.Register, e.SourceRegister = a.u32(), true
		case unix.NFTA_META_KEY:
			e.Key = expr.MetaKey(a.u32())
		}
	}
	return e, a.err
}

func parsePayload(b []byte) (*expr.Payload, error) {
	e := &expr.Payload{}
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_PAYLOAD_DREG:
			e.DestRegister = a.u32()
		case unix.NFTA_PAYLOAD_SREG:
			e.SourceRegister, e.OperationType = a.u32(), expr.PayloadWrite
		case unix.NFTA_PAYLOAD_BASE:
			e.Base = expr.PayloadBase(a.u32())
		case unix.NFTA_PAYLOAD_OFFSET:
			e.Offset = a.u32()
		case unix.NFTA_PAYLOAD_LEN:
			e.Len = a.u32()
		}
	}
	return e, a.err
}

func parseBitwise(b []byte) (*expr.Bitwise, error) {
	e := &expr.Bitwise{}
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_BITWISE_SREG:
			e.SourceRegister = a.u32()
		case unix.NFTA_BITWISE_DREG:
			e.DestRegister = a.u32()
		case unix.NFTA_BITWISE_LEN:
			e.Len = a.u32()
		case unix.NFTA_BITWISE_MASK:
			e.Mask = a.data()
		case unix.NFTA_BITWISE_XOR:
			e.Xor = a.data()
		case nftaBitwiseOp:
			if op := a.u32(); op != 0 && a.err == nil { // NFT_BITWISE_BOOL is mask/xor
				return nil, fmt.Errorf("bitwise operation %d (shift) is not an iptables match", op)
			}
		}
	}
	if a.err == nil && e.Mask == nil {
		return nil, errors.New("bitwise without a mask")
	}
	return e, a.err
}

func parseCmp(b []byte) (*expr.Cmp, error) {
	e := &expr.Cmp{}
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_CMP_SREG:
			e.Register = a.u32()
		case unix.NFTA_CMP_OP:
			e.Op = expr.CmpOp(a.u32())
		case unix.NFTA_CMP_DATA:
			e.Data = a.data()
		}
	}
	return e, a.err
}

func parseRange(b []byte) (*expr.Range, error) {
	e := &expr.Range{}
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_RANGE_SREG:
			e.Register = a.u32()
		case unix.NFTA_RANGE_OP:
			e.Op = expr.CmpOp(a.u32())
		case unix.NFTA_RANGE_FROM_DATA:
			e.FromData = a.data()
		case unix.NFTA_RANGE_TO_DATA:
			e.ToData = a.data()
		}
	}
	return e, a.err
}

// parseXT reads NFTA_MATCH_* / NFTA_TARGET_* (same attribute numbers).
func parseXT(kind string, b []byte) (any, error) {
	var name string
	var rev uint32
	var info []byte
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_MATCH_NAME:
			name = a.str()
		case unix.NFTA_MATCH_REV:
			rev = a.u32()
		case unix.NFTA_MATCH_INFO:
			info = a.val
		}
	}
	if a.err != nil {
		return nil, a.err
	}
	if kind == "match" {
		return &XTMatch{Name: name, Rev: rev, Info: info}, nil
	}
	return &XTTarget{Name: name, Rev: rev, Info: info}, nil
}

// parseImmediate returns an *expr.Verdict for a verdict or an
// *expr.Immediate for a data load.
func parseImmediate(b []byte) (any, error) {
	var dreg uint32
	var value []byte
	var verdict *expr.Verdict
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_IMMEDIATE_DREG:
			dreg = a.u32()
		case unix.NFTA_IMMEDIATE_DATA:
			d := attrs{b: a.val}
			for d.next() {
				switch d.typ {
				case unix.NFTA_DATA_VALUE:
					value = d.val
				case unix.NFTA_DATA_VERDICT:
					verdict = &expr.Verdict{}
					v := attrs{b: d.val}
					for v.next() {
						switch v.typ {
						case unix.NFTA_VERDICT_CODE:
							verdict.Kind = expr.VerdictKind(int32(v.u32()))
						case unix.NFTA_VERDICT_CHAIN:
							verdict.Chain = v.str()
						}
					}
					d.err = v.err
				}
			}
			a.err = d.err
		}
	}
	if a.err != nil {
		return nil, a.err
	}
	if dreg == unix.NFT_REG_VERDICT && verdict != nil {
		return verdict, nil
	}
	return &expr.Immediate{Register: dreg, Data: value}, nil
}
