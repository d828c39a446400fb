package parse

import (
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// token is one argument of a rule line, split the way iptables-restore
// splits it (xshared.c add_param_to_argv): at unquoted blanks; a double
// quote opens a quoted part in which a backslash escapes the next byte, and
// the closing quote ends the argument.
type token struct {
	s      string
	quoted bool
	off    int // where it starts in the line
}

// ruleParser turns one "-A CHAIN ..." line into a Rule. It keeps scratch
// buffers between rules and hands out the rules' slices from slabs, so a
// rule costs a handful of allocations however many options it has.
type ruleParser struct {
	toks []token
	fbuf []string
	sm   []scratchMatch
	so   []scratchOpt
	sa   []string

	blocks  []topology.Rule
	spare   *topology.Rule // a rule handed out for a line that failed
	nblocks int            // size of the last blocks slab: slabs grow with the file
	opts    slab[topology.Option]
	args    slab[string]
	matches slab[topology.Match]
	negs    slab[topology.Negatable]
	// slab lends Rule.CompileWith the typed arguments' storage.
	slab topology.Slab

	// mode is how parse hands out rules: carved from the slabs above
	// (keep), one scratch rule whose storage the next rule reuses
	// (check), or each allocated on its own (exact).
	mode  parseMode
	check topology.Rule

	// Rules of one ruleset repeat their parts (a block-list's thousands of
	// "-p tcp", "-m conntrack --ctstate NEW", "-j REJECT --reject-with
	// tcp-reset"): equal header values, match lists and target options are
	// shared between rules, read-only, from these caches (bounded: cleared
	// when full). A rule's own text stays its own.
	hdrs   map[hdrKey]*topology.Negatable
	mcache map[string][]topology.Match  // by the text from the first -m to the target
	tcache map[string][]topology.Option // by the text from -j/-g to the end
	mKey   string                       // this rule's keys ("" = not shared)
	tKey   string
	mHit   bool // this rule's matches came from mcache (compiled already)
	tHit   bool
}

// shareMax bounds each cache of shared rule parts.
const shareMax = 4096

type hdrKey struct {
	k   uint8
	neg bool
	v   string
}

type scratchMatch struct {
	name string
	a, b int // its options: so[a:b]
}

type scratchOpt struct {
	name   string
	neg    bool
	quoted bool // an argument was quoted (xtables_save_string)
	a, b   int  // its arguments: sa[a:b]
}

type parseMode uint8

const (
	// modeKeep: the rules are kept, carved from slabs that grow with the
	// file, sharing equal parts.
	modeKeep parseMode = iota
	// modeCheck: the rule is only checked (parsed and compiled, then
	// dropped, see rewind); nothing is shared or kept.
	modeCheck
	// modeExact: each rule is allocated alone, sized exactly, nothing
	// shared: a packed rule decoded again, which its caller keeps.
	modeExact
)

const (
	ctxNone = iota
	ctxMatch
	ctxTarget
)

func (rp *ruleParser) init() {
	rp.toks = make([]token, 0, 32)
	rp.fbuf = make([]string, 0, 8)
	rp.hdrs = map[hdrKey]*topology.Negatable{}
	rp.mcache = map[string][]topology.Match{}
	rp.tcache = map[string][]topology.Option{}
}

// compile compiles a rule parse returned (Rule.CompileWith), once for
// the parts it shares with rules before it, and offers its parts to the
// rules after it.
func (rp *ruleParser) compile(r *topology.Rule) error {
	if rp.mHit {
		// compiled with the rule that first had them; compiling again
		// would only carve their ports anew
		ms := r.Matches
		r.Matches = nil
		err := r.CompileWith(&rp.slab)
		r.Matches = ms
		return err
	}
	if err := r.CompileWith(&rp.slab); err != nil {
		return err
	}
	if rp.mcache == nil {
		return nil
	}
	if rp.mKey != "" {
		share(rp.mcache, rp.mKey, r.Matches)
	}
	if rp.tKey != "" && !rp.tHit {
		share(rp.tcache, rp.tKey, r.TargetOpts)
	}
	return nil
}

func share[K comparable, V any](m map[K]V, k K, v V) {
	if len(m) >= shareMax {
		clear(m)
	}
	m[k] = v
}

// parse parses text, which starts with "-A ". On failure it returns nil and
// the reason.
func (rp *ruleParser) parse(text string) (*topology.Rule, string) {
	switch rp.mode {
	case modeCheck:
		rp.check = topology.Rule{}
		if why := rp.parseInto(&rp.check, text); why != "" {
			return nil, why
		}
		return &rp.check, ""
	case modeExact:
		r := new(topology.Rule)
		if why := rp.parseInto(r, text); why != "" {
			return nil, why
		}
		return r, ""
	}
	blk := rp.spare
	rp.spare = nil
	if blk == nil {
		if len(rp.blocks) == 0 {
			rp.nblocks = min(max(2*rp.nblocks, 8), 256)
			rp.blocks = make([]topology.Rule, rp.nblocks)
		}
		blk = &rp.blocks[0]
		rp.blocks = rp.blocks[1:]
	}
	if why := rp.parseInto(blk, text); why != "" {
		*blk = topology.Rule{}
		rp.spare = blk
		return nil, why
	}
	return blk, ""
}

func (rp *ruleParser) parseInto(r *topology.Rule, text string) string {
	rp.mKey, rp.tKey, rp.mHit, rp.tHit = "", "", false, false
	toks, reason := rp.tokenize(text)
	if reason != "" {
		return reason
	}
	if len(toks) < 2 || toks[0].quoted || toks[0].s != "-A" {
		return "not a rule"
	}
	if toks[1].quoted || isStop(toks[1]) {
		return "-A without a chain name"
	}
	rp.sm, rp.so, rp.sa = rp.sm[:0], rp.so[:0], rp.sa[:0]
	var (
		ctx    = ctxNone
		neg    bool
		ta, tb int // target options: so[ta:tb]
		hdr    header
		// where the matches and the target start in text (-1: none),
		// and whether a header flag or a -m comes after them (then the
		// parts are not contiguous and not shared)
		mOff, jOff = -1, -1
		mixed      bool
	)
	r.Chain, r.Text = toks[1].s, text
	closeCtx := func() {
		switch ctx {
		case ctxMatch:
			rp.sm[len(rp.sm)-1].b = len(rp.so)
		case ctxTarget:
			tb = len(rp.so)
		}
	}
	for i := 2; i < len(toks); i++ {
		t := toks[i]
		if t.quoted {
			return "unexpected argument " + strconv.Quote(t.s)
		}
		switch t.s {
		case "!":
			if neg {
				return "two ! in a row"
			}
			neg = true
			continue
		case "-s", "-d", "-i", "-o", "-p":
			mixed = mixed || mOff >= 0 || jOff >= 0
			v, vneg, j, why := headerValue(toks, i)
			if why != "" {
				return why
			}
			if neg && vneg {
				return "two ! for " + t.s
			}
			if !hdr.set(headerIndex(t.s[1]), v, neg || vneg) {
				return "duplicate " + t.s
			}
			neg = false
			i = j
		case "-f":
			mixed = mixed || mOff >= 0 || jOff >= 0
			if !hdr.set(5, "", neg) {
				return "duplicate -f"
			}
			neg = false
		case "-m", "-j", "-g":
			if neg {
				return "! before " + t.s
			}
			if i+1 >= len(toks) || toks[i+1].quoted || isStop(toks[i+1]) {
				return t.s + " without a name"
			}
			name := toks[i+1].s
			i++
			closeCtx()
			if t.s == "-m" {
				mixed = mixed || jOff >= 0
				if mOff < 0 {
					mOff = t.off
				}
				rp.sm = append(rp.sm, scratchMatch{name: name, a: len(rp.so), b: len(rp.so)})
				ctx = ctxMatch
				continue
			}
			if r.Target != "" {
				return "two targets (" + r.Target + " and " + name + ")"
			}
			r.Target, r.Goto = name, t.s == "-g"
			jOff = t.off
			ta, tb = len(rp.so), len(rp.so)
			ctx = ctxTarget
		default:
			if len(t.s) <= 2 || t.s[0] != '-' || t.s[1] != '-' {
				return "unexpected " + strconv.Quote(t.s)
			}
			if ctx == ctxNone {
				return "option " + t.s + " before any -m or -j"
			}
			o := scratchOpt{name: t.s[2:], neg: neg, a: len(rp.sa)}
			neg = false
			// The old negation style: "--dport ! 80".
			if i+2 < len(toks) && !toks[i+1].quoted && toks[i+1].s == "!" && !isStop(toks[i+2]) {
				if o.neg {
					return "two ! for " + t.s
				}
				o.neg = true
				i++
			}
			text := stringOpt(o.name)
			if text && i+1 < len(toks) && (toks[i+1].s != "!" || toks[i+1].quoted) {
				// A free-text value is exactly one word, whatever it
				// looks like: xtables_save_string leaves "-j" unquoted.
				rp.sa = append(rp.sa, toks[i+1].s)
				o.quoted = toks[i+1].quoted
				i++
			}
			for !text && i+1 < len(toks) && !isStop(toks[i+1]) {
				rp.sa = append(rp.sa, toks[i+1].s)
				o.quoted = o.quoted || toks[i+1].quoted
				i++
			}
			o.b = len(rp.sa)
			rp.so = append(rp.so, o)
		}
	}
	if neg {
		return "! at the end of the rule"
	}
	closeCtx()
	if !mixed && rp.mcache != nil {
		if mOff >= 0 {
			end := len(text)
			if jOff >= 0 {
				end = jOff
			}
			rp.mKey = text[mOff:end]
		}
		if jOff >= 0 && tb > ta {
			rp.tKey = text[jOff:]
		}
	}
	rp.build(r, ta, tb)
	rp.header(r, &hdr)
	return ""
}

// header collects a rule's header matches -s -d -i -o -p -f (index 0 to 5).
type header struct {
	vals [6]string
	negs [6]bool
	have uint8 // bit k: header k is there
	n    int
}

func (h *header) set(k int, v string, neg bool) bool {
	if h.have&(1<<k) != 0 {
		return false
	}
	h.have |= 1 << k
	h.vals[k], h.negs[k] = v, neg
	h.n++
	return true
}

// headerIndex is the index in header of -s, -d, -i, -o, -p.
func headerIndex(flag byte) int {
	switch flag {
	case 's':
		return 0
	case 'd':
		return 1
	case 'i':
		return 2
	case 'o':
		return 3
	}
	return 4
}

// header hangs the header matches that are there on r, carved from a slab
// (a rule has one or two of the six, typically).
func (rp *ruleParser) header(r *topology.Rule, h *header) {
	if h.n == 0 {
		return
	}
	fields := [6]**topology.Negatable{&r.Src, &r.Dst, &r.InIface, &r.OutIface, &r.Proto, &r.Fragment}
	for k := range fields {
		if h.have&(1<<k) == 0 {
			continue
		}
		key := hdrKey{uint8(k), h.negs[k], h.vals[k]}
		n := rp.hdrs[key]
		if n == nil {
			n = &take(&rp.negs, 1, rp.nblocks*2)[0]
			n.Neg, n.Value = key.neg, key.v
			if rp.hdrs != nil {
				share(rp.hdrs, key, n)
			}
		}
		*fields[k] = n
	}
}

// build copies the scratch matches, options and arguments into slabs and
// hangs them on r, or hangs on it the equal ones of a rule before it.
func (rp *ruleParser) build(r *topology.Rule, ta, tb int) {
	if rp.mKey != "" {
		r.Matches, rp.mHit = rp.mcache[rp.mKey]
	}
	if rp.tKey != "" {
		r.TargetOpts, rp.tHit = rp.tcache[rp.tKey]
	}
	if len(rp.sm) > 0 && !rp.mHit {
		ms := take(&rp.matches, len(rp.sm), rp.nblocks*4)
		for k, m := range rp.sm {
			ms[k] = topology.Match{Name: m.name, Opts: rp.options(m.a, m.b)}
		}
		r.Matches = ms
	}
	if ta < tb && !rp.tHit {
		r.TargetOpts = rp.options(ta, tb)
	}
}

// options copies the scratch options so[a:b] with their arguments into
// slabs (nil when a == b).
func (rp *ruleParser) options(a, b int) []topology.Option {
	if a == b {
		return nil
	}
	chunk := rp.nblocks * 8 // options and arguments per rule, roughly
	sa0 := rp.so[a].a
	args := take(&rp.args, rp.so[b-1].b-sa0, chunk)
	copy(args, rp.sa[sa0:rp.so[b-1].b])
	opts := take(&rp.opts, b-a, chunk)
	for k, o := range rp.so[a:b] {
		opts[k] = topology.Option{Name: o.name, Neg: o.neg, Quoted: o.quoted}
		if o.a < o.b {
			opts[k].Args = args[o.a-sa0 : o.b-sa0 : o.b-sa0]
		}
	}
	return opts
}

// slab is an array rules' parts are carved from: base whole, free the
// part not handed out yet.
type slab[T any] struct{ base, free []T }

// take returns n elements carved from s (refilled with chunk-sized
// arrays), capped so that appending to the result never touches its
// neighbours.
func take[T any](s *slab[T], n, chunk int) []T {
	if n == 0 {
		return nil
	}
	if len(s.free) < n {
		s.base = make([]T, max(n, chunk))
		s.free = s.base
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

// rewind takes back what the slabs handed out for the rule just checked
// (modeCheck): the next rule reuses the storage, so checking allocates
// nothing once the slabs are big enough.
func (rp *ruleParser) rewind() {
	rp.opts.free, rp.args.free = rp.opts.base, rp.args.base
	rp.matches.free, rp.negs.free = rp.matches.base, rp.negs.base
	rp.slab.Rewind()
	rp.check = topology.Rule{}
}

// headerValue reads the value of -s/-d/-i/-o/-p at toks[i+1], accepting the
// old "-s ! 10.0.0.0/8" negation. j is the index of the value.
func headerValue(toks []token, i int) (v string, neg bool, j int, why string) {
	j = i + 1
	if j < len(toks) && !toks[j].quoted && toks[j].s == "!" {
		neg = true
		j++
	}
	if j >= len(toks) || isStop(toks[j]) {
		return "", false, 0, toks[i].s + " without a value"
	}
	if toks[j].quoted { // iptables-save never quotes addresses, interfaces or protocols
		return "", false, 0, "quoted value for " + toks[i].s
	}
	return toks[j].s, neg, j, ""
}

// isStop reports whether t ends an option's argument list: "!", a long
// option, or one of the rule's own flags. Quoted arguments never stop.
// stringOpt: options whose one argument is free text that
// iptables-save prints unquoted when it is only [-_0-9A-Za-z], so it may
// look like an option ("--comment -j").
func stringOpt(name string) bool {
	return name == "comment" || name == "log-prefix" || name == "nflog-prefix"
}

func isStop(t token) bool {
	if t.quoted {
		return false
	}
	s := t.s
	switch len(s) {
	case 0:
		return false
	case 1:
		return s == "!"
	case 2:
		return s[0] == '-' && strings.IndexByte("mjgsdiopf", s[1]) >= 0
	}
	return s[0] == '-' && s[1] == '-'
}

func (rp *ruleParser) tokenize(s string) ([]token, string) {
	toks := rp.toks[:0]
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '"' {
			i++
		}
		if i >= len(s) || s[i] != '"' {
			toks = append(toks, token{s: s[start:i], off: start})
			continue
		}
		prefix := s[start:i]
		i++
		qs, esc := i, false
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' {
				esc = true
				i++
			}
			i++
		}
		if i >= len(s) {
			rp.toks = toks
			return nil, "unterminated quote"
		}
		body := s[qs:i]
		i++
		if esc {
			body = unescape(body)
		}
		if prefix != "" {
			body = prefix + body
		}
		toks = append(toks, token{s: body, quoted: true, off: start})
	}
	rp.toks = toks
	return toks, ""
}

// unescape drops each backslash inside a quoted part, keeping the byte it
// escapes.
func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
