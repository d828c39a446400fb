package topology

import (
	"encoding/json"
	"iter"
	"math"
	"strings"
)

// A chain's rules are held in one of two forms, in order: Chain.Rules, the
// decoded rules, then the packed ones, which keep only what cannot be
// derived (the rule's text, its line and counters) and are decoded again
// each time they are asked for. The iptables-save reader packs the rules
// past its first few tens of thousands: a decoded rule with its header
// values, matches, options and typed arguments takes about four times its
// text, and a 200 MB block-list of 1.9 M rules would hold about 1 GB
// decoded against about 300 MB packed. Read a chain's rules through Len,
// Rule and All, which see both forms; Chain.Rules alone misses the packed
// ones.

// RuleDecoder decodes a packed rule again: text is Rule.Text, line
// Rule.Line. It returns the rule with Chain, Text, Line and its parts
// filled and compiled (the caller sets the counters), or an error, which
// the reader that packed the rule has already ruled out by decoding it
// once while reading.
type RuleDecoder func(text string, line int) (*Rule, error)

// packedRule is a rule as its text, line and counters: 40 bytes besides
// the text, which the reader's line blocks hold.
type packedRule struct {
	text           string
	packets, bytes uint64
	line           int32
	hasCounters    bool
}

// packChunk is how many packed rules one chunk holds: the chunks never
// move, so a growing chain copies nothing.
const packChunk = 1024

// RulePack holds a chain's packed rules (Chain.Packed).
type RulePack struct {
	decode RuleDecoder
	chunks [][]packedRule
	n      int
}

func (p *RulePack) at(i int) *packedRule { return &p.chunks[i/packChunk][i%packChunk] }

// Len is the number of packed rules (0 for nil).
func (p *RulePack) Len() int {
	if p == nil {
		return 0
	}
	return p.n
}

// Equal says whether p and o pack the same rules: text, line and
// counters (go-cmp asks it, as it cannot look inside).
func (p *RulePack) Equal(o *RulePack) bool {
	if p.Len() != o.Len() {
		return false
	}
	for i := range p.Len() {
		if *p.at(i) != *o.at(i) {
			return false
		}
	}
	return true
}

// AppendPacked appends a rule by its text, line and counters, to be
// decoded by decode when asked for (every packed rule of a chain has the
// same decode), after the chain's decoded Rules. It reports false,
// appending nothing, when the line does not fit the packed form (negative
// or over 2^31-1).
func (c *Chain) AppendPacked(decode RuleDecoder, text string, line int, has bool, packets, bytes uint64) bool {
	if line < 0 || line > math.MaxInt32 {
		return false
	}
	p := c.Packed
	if p == nil {
		p = &RulePack{decode: decode}
		c.Packed = p
	}
	if p.n%packChunk == 0 {
		p.chunks = append(p.chunks, make([]packedRule, 0, packChunk))
	}
	last := &p.chunks[len(p.chunks)-1]
	*last = append(*last, packedRule{text: text, packets: packets, bytes: bytes, line: int32(line), hasCounters: has})
	p.n++
	return true
}

// Len is the number of the chain's rules.
func (c *Chain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.Rules) + c.Packed.Len()
}

// Rule returns the chain's i-th rule (from 0). A packed rule is decoded
// anew on each call: the result is the caller's, equal to but not the
// same pointer as the last call's. A rule that fails to decode again
// (which reading it once ruled out) comes back undecidable, with the
// target its words name: never a panic, a match or a miss.
func (c *Chain) Rule(i int) *Rule {
	if i < len(c.Rules) {
		return c.Rules[i]
	}
	pr := c.Packed.at(i - len(c.Rules))
	r, err := c.Packed.decode(pr.text, int(pr.line))
	if err != nil || r == nil {
		why := "rule no longer decodes"
		if err != nil {
			why += ": " + err.Error()
		}
		r = &Rule{Chain: c.Name, Text: pr.text, Line: int(pr.line), Undecidable: why}
		// its target, as far as the words tell, so that the evaluator
		// stops at it as unknown where it could decide
		f := strings.Fields(pr.text)
		for k := 0; k+1 < len(f); k++ {
			if f[k] == "-j" || f[k] == "-g" {
				r.Target, r.Goto = f[k+1], f[k] == "-g"
			}
		}
	}
	r.HasCounters, r.Packets, r.Bytes = pr.hasCounters, pr.packets, pr.bytes
	return r
}

// All yields the chain's rules in order with their index (see Rule for
// the packed ones).
func (c *Chain) All() iter.Seq2[int, *Rule] {
	return func(yield func(int, *Rule) bool) {
		if c == nil {
			return
		}
		for i := range c.Len() {
			if !yield(i, c.Rule(i)) {
				return
			}
		}
	}
}

// RuleList returns every rule of the chain as one slice: Rules itself
// when none is packed, else a new slice with the packed ones decoded.
func (c *Chain) RuleList() []*Rule {
	if c.Packed.Len() == 0 {
		return c.Rules
	}
	out := make([]*Rule, 0, c.Len())
	for _, r := range c.All() {
		out = append(out, r)
	}
	return out
}

// plainChain is Chain without its methods, for JSON.
type plainChain Chain

// MarshalJSON writes the chain with its packed rules decoded, as if they
// were all in Rules (JSON reads them back into Rules).
func (c Chain) MarshalJSON() ([]byte, error) {
	if c.Packed.Len() > 0 {
		c.Rules = c.RuleList()
		c.Packed = nil
	}
	return json.Marshal(plainChain(c))
}
