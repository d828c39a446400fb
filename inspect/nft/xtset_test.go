package nft

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Info structs of the set match (xt_set.h, x86-64), checked against
// libxt_set.c's save functions. The kernel keeps the set's index; the name
// comes from the namespace's ipset (Dump.Sets).

// setInfo0 is struct xt_set_info_match_v0 (32 bytes): __u16 index;
// __u32 flags[7] at 4 (IPSET_SRC 1, IPSET_DST 2, IPSET_MATCH_INV 4).
func setInfo0(index uint16, flags ...uint32) []byte {
	b := make([]byte, 32)
	ne.PutUint16(b, index)
	for i, f := range flags {
		ne.PutUint32(b[4+4*i:], f)
	}
	return b
}

// setInfo1 is struct xt_set_info_match_v1 (8 bytes with XT_ALIGN): __u16
// index; __u8 dim, flags (IPSET_INV_MATCH 1, bit i: dimension i is src,
// IPSET_RETURN_NOMATCH 0x80).
func setInfo1(index uint16, dim, flags uint8) []byte {
	b := make([]byte, 8)
	ne.PutUint16(b, index)
	b[2], b[3] = dim, flags
	return b
}

// setCounter is op (IPSET_COUNTER_EQ 1, NE 2, LT 3, GT 4) and value.
type setCounter struct {
	op    uint8
	value uint64
}

// setInfo34 is struct xt_set_info_match_v3 or _v4 (48 bytes): the v1 set
// at 0, packets at 8, bytes at 24 (v3: __u8 op, __u64 value at +8; v4:
// __u64 value, __u8 op at +8), __u32 flags at 40.
func setInfo34(rev uint32, index uint16, dim, setFlags uint8, packets, bytes setCounter, flags uint32) []byte {
	b := make([]byte, 48)
	copy(b, setInfo1(index, dim, setFlags))
	for i, c := range []setCounter{packets, bytes} {
		o := 8 + 16*i
		if rev == 3 {
			b[o] = c.op
			ne.PutUint64(b[o+8:], c.value)
		} else {
			ne.PutUint64(b[o:], c.value)
			b[o+8] = c.op
		}
	}
	ne.PutUint32(b[40:], flags)
	return b
}

func TestXTSet(t *testing.T) {
	sets := &SetNames{Names: map[uint16]string{0: "s1", 3: "mesh-peers"}}
	cases := []xtCase{
		{"rev 0 src,dst", &XTMatch{Name: "set", Info: setInfo0(0, 1, 2)}, " -m set --match-set s1 src,dst"},
		{"rev 0 inverted, one dimension", &XTMatch{Name: "set", Info: setInfo0(3, 2|4)}, " -m set ! --match-set mesh-peers dst"},
		{"rev 1", &XTMatch{Name: "set", Rev: 1, Info: setInfo1(3, 3, 1<<1|1<<3)}, " -m set --match-set mesh-peers src,dst,src"},
		{"rev 1 inverted", &XTMatch{Name: "set", Rev: 1, Info: setInfo1(0, 1, 1)}, " -m set ! --match-set s1 dst"},
		{"rev 2 return-nomatch", &XTMatch{Name: "set", Rev: 2, Info: setInfo1(0, 2, 1<<2|0x80)},
			" -m set --match-set s1 dst,src --return-nomatch"},
		{"rev 2 without", &XTMatch{Name: "set", Rev: 2, Info: setInfo1(0, 1, 1<<1)}, " -m set --match-set s1 src"},
		{"rev 3 everything", &XTMatch{Name: "set", Rev: 3, Info: setInfo34(3, 3, 2, 1|1<<1, setCounter{4, 5}, setCounter{2, 7}, 0x80|1<<3|1<<4)},
			" -m set ! --match-set mesh-peers src,dst --return-nomatch ! --update-counters ! --update-subcounters --packets-gt 5 ! --bytes-eq 7"},
		{"rev 4 everything", &XTMatch{Name: "set", Rev: 4, Info: setInfo34(4, 3, 2, 1|1<<1, setCounter{4, 5}, setCounter{2, 7}, 0x80|1<<3|1<<4)},
			" -m set ! --match-set mesh-peers src,dst --return-nomatch ! --update-counters ! --update-subcounters --packets-gt 5 ! --bytes-eq 7"},
		{"rev 4 lt eq, big values", &XTMatch{Name: "set", Rev: 4, Info: setInfo34(4, 0, 1, 1<<1, setCounter{3, 1 << 40}, setCounter{1, 18446744073709551615}, 0)},
			" -m set --match-set s1 src --packets-lt 1099511627776 --bytes-eq 18446744073709551615"},
		{"rev 4 plain", &XTMatch{Name: "set", Rev: 4, Info: setInfo34(4, 0, 1, 0, setCounter{}, setCounter{}, 0)},
			" -m set --match-set s1 dst"},
	}
	runXTCases(t, sets, cases)
}

// TestXTSetUnresolved: a set index the namespace has no name for (or no
// lookup at all, as for DecodeRule) cannot be printed; iptables-save
// itself fails on it. The match stays undecoded, saying why.
func TestXTSetUnresolved(t *testing.T) {
	x := &XTMatch{Name: "set", Rev: 4, Info: setInfo34(4, 9, 1, 0, setCounter{}, setCounter{}, 0)}
	for _, c := range []struct {
		sets *SetNames
		why  string
	}{
		{nil, "ipset index 9: set names were not looked up"},
		{&SetNames{Names: map[uint16]string{0: "s1"}}, "ipset index 9: the namespace has no set with this index"},
		{&SetNames{Err: "ipset socket: permission denied"}, "ipset index 9: ipset socket: permission denied"},
	} {
		r, probs := decodeRule("X", []any{x}, nil, c.sets)
		if r.Text != `-A X -m set --nft-undecoded "match set rev 4 (48 bytes)"` ||
			len(probs) != 1 || !strings.Contains(probs[0], c.why) {
			t.Errorf("%+v: %s %q", c.sets, r.Text, probs)
		}
	}
	for _, x := range []*XTMatch{
		{Name: "set", Rev: 5, Info: make([]byte, 48)},
		{Name: "set", Rev: 3, Info: make([]byte, 40)},
		{Name: "set", Rev: 1, Info: setInfo1(0, 7, 0)}, // dim > IPSET_DIM_MAX
		{Name: "set", Info: make([]byte, 20)},
	} {
		r, probs := decodeRule("X", []any{x}, nil, &SetNames{Names: map[uint16]string{0: "s1"}})
		if len(probs) != 1 || !strings.Contains(r.Text, undecodedOpt) {
			t.Errorf("rev %d: %s %q", x.Rev, r.Text, probs)
		}
	}
}

// TestSetIndexes: Read looks up exactly the indexes the rules' set
// matches use, once each, in order.
func TestSetIndexes(t *testing.T) {
	d := &Dump{Rules: []RawRule{
		{Exprs: []any{&XTMatch{Name: "set", Rev: 4, Info: setInfo34(4, 7, 1, 0, setCounter{}, setCounter{}, 0)}, counter}},
		{Exprs: []any{&XTMatch{Name: "set", Info: setInfo0(2, 1)}, &XTMatch{Name: "set", Rev: 1, Info: setInfo1(7, 1, 0)}}},
		{Exprs: []any{&XTMatch{Name: "mark", Rev: 1, Info: make([]byte, 12)}, &XTMatch{Name: "set", Info: []byte{1}}}},
	}}
	if got := setIndexes(d); !reflect.DeepEqual(got, []uint16{2, 7}) {
		t.Errorf("indexes %v", got)
	}
	if got := setIndexes(&Dump{}); len(got) != 0 {
		t.Errorf("no set matches: %v", got)
	}
}

// TestReadSetNames: read asks the source for the names only when a rule
// uses a set, and a failed lookup leaves the set matches undecoded with
// the reason instead of failing the read.
func TestReadSetNames(t *testing.T) {
	rule := RawRule{Table: "filter", Chain: "INPUT", Exprs: []any{
		&XTMatch{Name: "set", Rev: 1, Info: setInfo1(4, 1, 1<<1)}, counter, accept}}
	src := &fakeSource{
		dumps: map[string]*Dump{"/ns/set": {Tables: []string{"filter"}, Rules: []RawRule{rule}},
			"/ns/plain": {Tables: []string{"filter"}}},
		sets: map[uint16]string{4: "blocked"},
	}
	fw, err := read(src, "/ns/set")
	if err != nil {
		t.Fatal(err)
	}
	if r := fw.Table("filter").Chain("INPUT").Rules[0]; r.Text != "-A INPUT -m set --match-set blocked src -j ACCEPT" || len(fw.Unparsed) > 0 {
		t.Errorf("%s %+v", r.Text, fw.Unparsed)
	}
	if !reflect.DeepEqual(src.setCalls, [][]uint16{{4}}) {
		t.Errorf("lookups %v", src.setCalls)
	}
	if _, err := read(src, "/ns/plain"); err != nil || len(src.setCalls) != 1 {
		t.Errorf("a namespace without set matches was looked up: %v %v", src.setCalls, err)
	}
	src.setErr = errors.New("ipset: protocol not available")
	fw, err = read(src, "/ns/set")
	if err != nil || len(fw.Unparsed) != 1 || !strings.Contains(fw.Unparsed[0].Reason, "ipset index 4: ipset: protocol not available") {
		t.Errorf("failed lookup: %+v %v", fw.Unparsed, err)
	}
}
