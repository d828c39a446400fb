package parse

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// `iptables -L -n -v` prints each rule as columns and then every match and
// the target as prose: their extensions' print functions, which are not
// their save functions (iptables 1.8.9, extensions/libxt_*.c and
// libipt_*.c; the columns are iptables/xshared.c print_rule_details,
// print_fragment, print_ifaces, print_ipv4_addresses; nft-ipv4.c and
// iptables.c print "[goto] " before the matches). parseIptablesL reads
// that back into the rules iptables-save would have printed wherever the
// prose says exactly the same, translating each print function's words
// into its save function's options:
//
//	tcp spts:1024:65535 dpt:!80 flags:0x17/0x02   -m tcp --sport 1024:65535 ! --dport 80 --tcp-flags FIN,SYN,RST,ACK SYN
//	multiport dports  !80,443                     -m multiport ! --dports 80,443
//	/* text */                                    -m comment --comment text
//	ADDRTYPE match src-type !LOCAL limit-in       -m addrtype ! --src-type LOCAL --limit-iface-in
//	mark match ! 0x100/0xff00                     -m mark ! --mark 0x100/0xff00
//	ctstate DNAT ctorigdstport 8080               -m conntrack --ctstate DNAT --ctorigdstport 8080
//	state NEW,ESTABLISHED                         -m state --state NEW,ESTABLISHED
//	statistic mode nth every 2                    -m statistic --mode nth --every 2 --packet 0
//	ipvs vaddr 10.0.0.3 vdir ORIGINAL             -m ipvs --ipvs --vaddr 10.0.0.3 --vdir ORIGINAL
//	to:172.18.0.2:8080 (DNAT, SNAT)               --to-destination 172.18.0.2:8080
//	redir ports 80, masq ports: 1024-65535        --to-ports 80, --to-ports 1024-65535
//	MARK set 0x100 (and, or, xor, xset)           --set-xmark 0x100/0xffffffff
//	reject-with tcp-reset, LOG flags 0 level 6 prefix "x"
//
// What the prose does not say exactly is never guessed: a match this reader
// does not know (bpf, u32, policy, set, ...), or words it cannot place, make
// the rule Undecidable (the evaluator then stops there as unknown), with the
// words in the reason; options of a target the path does not depend on
// (CT, CONNMARK save/restore, ...) that cannot be translated are reported
// in Unparsed and the rule kept. Counters are exact with -x; without it a
// value printed with a K/M/G/T suffix is rounded, and such a rule has no
// counters (HasCounters false).
//
// Without -n (names for addresses, ports and protocols) "anywhere" is
// 0.0.0.0/0 and a protocol name is its number, exactly; a host name or a
// service name cannot be turned back into its number, so such a rule is
// Undecidable. Without -v the in/out interface
// columns are missing: every rule is read, and Undecidable (a rule whose
// shown parts do not match a packet still does not match it; one whose
// shown parts match may be restricted to an interface the listing hides,
// so the evaluator stops there as unknown), as are the chains' counters.

type listParser struct {
	file, table string
	fw          *topology.Firewall
	t           *topology.Table
	chain       *topology.Chain
	chains      map[string]bool
	num, counts bool // the header has num / pkts bytes columns
	noIfaces    bool // no in/out columns (listed without -v)
	header      bool // the current chain's header was seen
	lastNum     int
	slab        topology.Slab
	bad         badArgs
}

func parseIptablesL(file, table string, ls *lines, first string) (*topology.Firewall, error) {
	p := &listParser{file: file, table: table, chains: map[string]bool{},
		t: &topology.Table{Name: table, Chains: []*topology.Chain{}}}
	p.fw = &topology.Firewall{Tables: []*topology.Table{p.t}}
	if err := ls.each(first, p.line); err != nil {
		return nil, err
	}
	if err := p.bad.err(file, p.fw.Unparsed); err != nil {
		return nil, err
	}
	return p.fw, nil
}

func (p *listParser) errorf(n int, format string, args ...any) error {
	return errorf(p.file, n, format, args...)
}

func (p *listParser) line(line string, n int) error {
	s := trimSpace(line)
	switch {
	case strings.HasPrefix(s, "Chain "):
		return p.chainLine(s, n)
	case p.chain == nil:
		return p.errorf(n, "not an iptables -L listing: %q before any \"Chain\" line", clip(s))
	case !p.header:
		return p.headerLine(s, n)
	}
	return p.rule(s, n)
}

// chainLine reads "Chain NAME (policy POLICY [N packets, M bytes])" or
// "Chain NAME (N references)" (print_header).
func (p *listParser) chainLine(s string, n int) error {
	f := fields(nil, s)
	if len(f) < 3 || !strings.HasPrefix(f[2], "(") || !strings.HasSuffix(s, ")") {
		return p.errorf(n, "bad chain line %q", clip(s))
	}
	if !listName(f[1]) {
		return p.errorf(n, "bad chain name %q", f[1])
	}
	c := &topology.Chain{Name: f[1], Policy: "-", Rules: []*topology.Rule{}}
	if f[2] == "(policy" {
		if len(f) < 4 {
			return p.errorf(n, "bad chain line %q", clip(s))
		}
		c.Policy = strings.TrimSuffix(f[3], ")")
		if c.Policy != "ACCEPT" && c.Policy != "DROP" {
			return p.errorf(n, "chain %s: bad policy %q", c.Name, c.Policy)
		}
		if len(f) == 8 && f[5] == "packets," && f[7] == "bytes)" {
			pk, exact1, ok1 := listCounter(f[4])
			by, exact2, ok2 := listCounter(f[6])
			if !ok1 || !ok2 {
				return p.errorf(n, "bad chain line %q", clip(s))
			}
			if exact1 && exact2 { // else rounded: not kept
				c.Packets, c.Bytes = pk, by
			}
		} else if len(f) != 4 {
			return p.errorf(n, "bad chain line %q", clip(s))
		}
		if !builtin(p.table, c.Name) {
			return p.errorf(n, "chain %s has a policy, but the %s table has no built-in chain %s (a listing of another table?)", c.Name, p.table, c.Name)
		}
	}
	if p.chains[c.Name] {
		return p.errorf(n, "chain %s listed twice (one table per file)", c.Name)
	}
	p.chains[c.Name] = true
	p.t.Chains = append(p.t.Chains, c)
	p.chain, p.header, p.lastNum = c, false, 0
	return nil
}

// headerLine reads the column header, which says which columns follow.
func (p *listParser) headerLine(s string, n int) error {
	f := fields(nil, s)
	has := map[string]bool{}
	for _, w := range f {
		has[w] = true
	}
	if !has["target"] || !has["prot"] || !has["source"] || !has["destination"] {
		return p.errorf(n, "not an iptables -L column header: %q", clip(s))
	}
	p.noIfaces = !has["in"] || !has["out"]
	p.num, p.counts, p.header = has["num"], has["pkts"], true
	return nil
}

// col is a column of a rule line with where it ends.
type col struct {
	s   string
	end int
}

func (p *listParser) rule(s string, n int) error {
	var cols []col
	for i := 0; i < len(s) && len(cols) < 12; {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if j > i {
			cols = append(cols, col{s[i:j], j})
		}
		i = j
	}
	k := 0
	r := &topology.Rule{Chain: p.chain.Name, Line: n}
	if p.num {
		if len(cols) == 0 {
			return p.errorf(n, "bad rule line %q", clip(s))
		}
		num, ok := atoi(cols[0].s)
		if !ok || num != p.lastNum+1 {
			return p.errorf(n, "rule number %q after %d: a cut or edited listing?", cols[0].s, p.lastNum)
		}
		p.lastNum = num
		k++
	}
	if p.counts {
		if len(cols) < k+2 {
			return p.errorf(n, "bad rule line %q", clip(s))
		}
		pk, exact1, ok1 := listCounter(cols[k].s)
		by, exact2, ok2 := listCounter(cols[k+1].s)
		if !ok1 || !ok2 {
			return p.errorf(n, "bad counters %q %q", cols[k].s, cols[k+1].s)
		}
		if exact1 && exact2 {
			r.HasCounters, r.Packets, r.Bytes = true, pk, by
		}
		k += 2
	}
	// target (may be empty), prot, opt, in, out, source, destination; in
	// and out are not there without -v
	width := 6
	if p.noIfaces {
		width = 4
	}
	switch {
	case len(cols) >= k+width+1 && isListOpt(cols[k+2].s):
		r.Target = cols[k].s
		if !listName(r.Target) {
			return p.errorf(n, "bad target %q", r.Target)
		}
		k++
	case len(cols) >= k+width && isListOpt(cols[k+1].s):
	default:
		if p.noIfaces {
			return p.errorf(n, "bad rule line %q: want [num] target prot opt source destination", clip(s))
		}
		return p.errorf(n, "bad rule line %q: want [num] pkts bytes target prot opt in out source destination", clip(s))
	}
	six := cols[k : k+width]
	if p.noIfaces { // "*" for the interfaces not shown; the rule is undecidable below
		six = []col{cols[k], cols[k+1], {s: "*"}, {s: "*"}, cols[k+2], cols[k+3]}
	}
	if err := p.header6(r, six, n); err != nil {
		return err
	}
	rest := s[six[5].end:]
	x := &prose{s: rest}
	x.skip()
	if strings.HasPrefix(x.s[x.i:], "[goto]") {
		r.Goto = true
		x.i += len("[goto]")
	}
	if r.Goto && r.Target == "" {
		return p.errorf(n, "[goto] without a target")
	}
	p.matches(r, x)
	p.targetOpts(r, x, n)
	if err := r.CompileWith(&p.slab); err != nil {
		p.bad.add(&Error{File: p.file, Line: n, Msg: "chain " + r.Chain + ": " + err.Error(), Err: err})
		return nil
	}
	if p.noIfaces {
		r.AddUndecidable("listed without -v, which hides the rule's in/out interfaces (list with iptables -L -n -v)")
	}
	r.Text = r.Render()
	p.chain.Rules = append(p.chain.Rules, r)
	return nil
}

func isListOpt(s string) bool { return s == "--" || s == "-f" || s == "!f" }

// listName: a chain, target or interface name the rule syntax can carry
// (iptables refuses chain names starting with - or !; a quote would not
// read back).
func listName(s string) bool {
	return s != "" && s[0] != '-' && s[0] != '!' && !strings.ContainsAny(s, "\"'\\")
}

// header6 reads prot, opt, in, out, source and destination.
func (p *listParser) header6(r *topology.Rule, c []col, n int) error {
	prot, neg := strings.CutPrefix(c[0].s, "!")
	switch name := protoName(prot); {
	case name == "":
		return p.errorf(n, "bad protocol %q", c[0].s)
	case name != "all" || neg:
		r.Proto = &topology.Negatable{Neg: neg, Value: name}
	}
	switch c[1].s {
	case "-f":
		r.Fragment = &topology.Negatable{}
	case "!f":
		r.Fragment = &topology.Negatable{Neg: true}
	}
	for i, fld := range []**topology.Negatable{&r.InIface, &r.OutIface} {
		v, neg := strings.CutPrefix(c[2+i].s, "!")
		if !listName(v) {
			return p.errorf(n, "bad interface %q", c[2+i].s)
		}
		if v != "*" || neg {
			*fld = &topology.Negatable{Neg: neg, Value: v}
		}
	}
	for i, fld := range []**topology.Negatable{&r.Src, &r.Dst} {
		v, neg := strings.CutPrefix(c[4+i].s, "!")
		if v == "anywhere" { // without -n: what -n prints 0.0.0.0/0
			v = "0.0.0.0/0"
		}
		pfx, ok := listAddr(v)
		if !ok && listHostName(v) {
			// without -n: a name the lister's resolver gave an address;
			// which address is not in the text
			r.AddUndecidable(fmt.Sprintf("address %q is a name (listed without -n)", c[4+i].s))
			continue
		}
		if !ok {
			return p.errorf(n, "address %q is not numeric: list with iptables -L -n -v", c[4+i].s)
		}
		if pfx != "0.0.0.0/0" || neg {
			*fld = &topology.Negatable{Neg: neg, Value: pfx}
		}
	}
	return nil
}

// listHostName: a host name (and optional /mask) as -L without -n prints
// an address it could resolve ("localhost", "db.example.com/24").
func listHostName(s string) bool {
	h, _, _ := strings.Cut(s, "/")
	return h != "" && strings.Trim(strings.ToLower(h), "abcdefghijklmnopqrstuvwxyz0123456789-._") == "" && strings.ContainsAny(strings.ToLower(h[:1]), "abcdefghijklmnopqrstuvwxyz")
}

// listAddr turns an address as print_ipv4_addresses prints it with -n
// ("10.0.0.4" for a /32, "10.0.0.0/8", "10.0.0.0/255.0.255.0") into the way
// iptables-save prints it (save_ipv4_addr: always with a mask).
func listAddr(s string) (string, bool) {
	a, m, hasMask := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(a)
	if err != nil || !addr.Is4() {
		return "", false
	}
	if !hasMask {
		return s + "/32", true
	}
	if _, ok := atoi(m); ok {
		return s, true
	}
	if mask, err := netip.ParseAddr(m); err == nil && mask.Is4() {
		return s, true
	}
	return "", false
}

// protoName maps the prot column (a number with -n since iptables 1.8.9, a
// name before) to the name iptables-save prints: proto_to_name over
// xtables_chain_protos, then getprotobynumber, i.e. /etc/protocols (the
// common entries of Debian's netbase below; other numbers stay numbers);
// "all" for any.
var protoNames = map[string]string{"0": "all", "6": "tcp", "17": "udp", "1": "icmp", "132": "sctp", "136": "udplite",
	"58": "ipv6-icmp", "50": "esp", "51": "ah", "135": "mobility-header",
	"2": "igmp", "4": "ipencap", "33": "dccp", "41": "ipv6", "46": "rsvp", "47": "gre", "89": "ospf", "94": "ipip",
	"97": "etherip", "103": "pim", "112": "vrrp", "115": "l2tp", "137": "mpls-in-ip"}

func protoName(s string) string {
	if v, ok := protoNames[s]; ok {
		return v
	}
	if v, ok := atoi(s); ok && v <= 255 {
		return s
	}
	if s != "" && s[0] >= 'a' && s[0] <= 'z' && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == "" {
		return s // a name (iptables before 1.8.9)
	}
	return ""
}

// listCounter reads a counter as xtables_print_num prints it: digits (with
// -x, or a value it did not shorten: exact), or digits and K, M, G or T
// (rounded: not exact, and the value is not kept).
func listCounter(s string) (v uint64, exact, ok bool) {
	if v, ok := atou(s); ok {
		return v, true, true
	}
	if len(s) < 2 || strings.IndexByte("KMGT", s[len(s)-1]) < 0 {
		return 0, false, false
	}
	_, ok = atou(s[:len(s)-1])
	return 0, false, ok
}

// prose is the words after the columns: the matches' and the target's
// print output.
type prose struct {
	s string
	i int
}

func (x *prose) skip() {
	for x.i < len(x.s) && (x.s[x.i] == ' ' || x.s[x.i] == '\t') {
		x.i++
	}
}

func (x *prose) done() bool { x.skip(); return x.i >= len(x.s) }

// peek returns the next word without taking it.
func (x *prose) peek() string {
	x.skip()
	j := x.i
	for j < len(x.s) && x.s[j] != ' ' && x.s[j] != '\t' {
		j++
	}
	return x.s[x.i:j]
}

func (x *prose) next() string {
	w := x.peek()
	x.i += len(w)
	return w
}

// rest is what is left, trimmed.
func (x *prose) rest() string { x.skip(); return trimSpace(x.s[x.i:]) }

// matchWords translates one match print into options; it returns false,
// taking nothing, when the words are not that print.
type matchWords func(x *prose) (topology.Match, bool)

// matches reads match prints until words no match print claims; what is
// left is the target's (see targetOpts).
func (p *listParser) matches(r *topology.Rule, x *prose) {
	for !x.done() {
		start := x.i
		m, ok := p.oneMatch(x)
		if !ok {
			x.i = start
			return
		}
		r.Matches = append(r.Matches, m)
	}
}

func (p *listParser) oneMatch(x *prose) (topology.Match, bool) {
	w := x.peek()
	switch {
	case w == "tcp" || w == "udp":
		return portMatch(x)
	case w == "multiport":
		return multiportMatch(x)
	case w == "/*":
		return commentMatch(x)
	case w == "ADDRTYPE":
		return addrtypeMatch(x)
	case w == "mark" || w == "MARK":
		return markMatch(x)
	case w == "statistic":
		return statisticMatch(x)
	}
	if m, ok := optionRun(x, "conntrack", ctWords); ok {
		return m, true
	}
	if m, ok := stateMatch(x); ok {
		return m, true
	}
	return optionRun(x, "ipvs", ipvsWords)
}

// portMatch: " tcp" / " udp", then spt:P, spts:A:B, dpt:..., dpts:...
// (print_ports, with ! after the colon), option=N and flags:0xM/0xC (tcp
// only, numeric).
func portMatch(x *prose) (topology.Match, bool) {
	m := topology.Match{Name: x.next()}
	for !x.done() {
		w := x.peek()
		name, val, ok := strings.Cut(w, ":")
		if !ok {
			if o, ok := strings.CutPrefix(w, "option="); ok && m.Name == "tcp" {
				v, neg := strings.CutPrefix(o, "!")
				if _, ok := atoi(v); !ok {
					return m, false
				}
				m.Opts = append(m.Opts, topology.Option{Name: "tcp-option", Neg: neg, Args: []string{v}})
				x.next()
				continue
			}
			break
		}
		v, neg := strings.CutPrefix(val, "!")
		switch name {
		case "spt", "dpt", "spts", "dpts":
			v, ok = portWords(m.Name, v, strings.HasSuffix(name, "s"))
			if !ok {
				return m, false // a service name not known, or garbage
			}
			m.Opts = append(m.Opts, topology.Option{Name: name[:1] + "port", Neg: neg, Args: []string{v}})
		case "flags":
			if m.Name != "tcp" {
				return m, false
			}
			mask, cmp, ok := tcpFlags(v)
			if !ok {
				return m, false
			}
			m.Opts = append(m.Opts, topology.Option{Name: "tcp-flags", Neg: neg, Args: []string{mask, cmp}})
		default:
			return m, true // the next print ("to:1.2.3.4:80")
		}
		x.next()
	}
	return m, true
}

// portWords reads a port or a range "A:B" (isRange) of proto ("" when the
// print does not say), each a number or, without -n, a service name
// (servicePort), and returns it in numbers.
func portWords(proto, v string, isRange bool) (string, bool) {
	a, b, two := strings.Cut(v, ":")
	if two != isRange {
		return "", false
	}
	a, ok := portNumber(proto, a)
	if !ok {
		return "", false
	}
	if two {
		b, ok = portNumber(proto, b)
		return a + ":" + b, ok
	}
	return a, true
}

// tcpFlags turns "0x17/0x02" (print_flags with -n) into the names
// tcp_save prints (print_tcpf): "FIN,SYN,RST,ACK" "SYN".
func tcpFlags(v string) (mask, cmp string, ok bool) {
	a, b, ok := strings.Cut(v, "/")
	if !ok {
		return "", "", false
	}
	m, err1 := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 8)
	c, err2 := strconv.ParseUint(strings.TrimPrefix(b, "0x"), 16, 8)
	if err1 != nil || err2 != nil || !strings.HasPrefix(a, "0x") || !strings.HasPrefix(b, "0x") {
		return "", "", false
	}
	names := func(f uint64) string {
		if f == 0 {
			return "NONE"
		}
		var out []string
		for i, n := range []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"} {
			if f&(1<<i) != 0 {
				out = append(out, n)
			}
		}
		if f&^0x3f != 0 {
			return ""
		}
		return strings.Join(out, ",")
	}
	mask, cmp = names(m), names(c)
	return mask, cmp, mask != "" && cmp != ""
}

// multiportMatch: " multiport dports 80,443" (revision 1: "dports  !80").
func multiportMatch(x *prose) (topology.Match, bool) {
	x.next()
	dir := x.next()
	if dir != "dports" && dir != "sports" && dir != "ports" {
		return topology.Match{}, false
	}
	v, neg := strings.CutPrefix(x.next(), "!")
	items := strings.Split(v, ",")
	for i, it := range items {
		n, ok := portWords("", it, strings.Contains(it, ":"))
		if !ok {
			return topology.Match{}, false
		}
		items[i] = n
	}
	v = strings.Join(items, ",")
	return topology.Match{Name: "multiport", Opts: []topology.Option{{Name: dir, Neg: neg, Args: []string{v}}}}, true
}

// commentMatch: " /* TEXT */". A comment holding " */" cannot be told from
// its end: the first one ends it (what follows then does not read, and the
// rule is undecidable).
func commentMatch(x *prose) (topology.Match, bool) {
	x.skip()
	if !strings.HasPrefix(x.s[x.i:], "/* ") {
		return topology.Match{}, false
	}
	body := x.s[x.i+len("/* "):]
	end := strings.Index(body, " */")
	if end < 0 {
		return topology.Match{}, false
	}
	text := body[:end]
	x.i += len("/* ") + end + len(" */")
	return topology.Match{Name: "comment", Opts: []topology.Option{{Name: "comment", Args: []string{text}, Quoted: saveQuoted(text)}}}, true
}

// saveQuoted says whether xtables_save_string quotes s.
func saveQuoted(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return true
		}
	}
	return false
}

var addrTypes = map[string]bool{"UNSPEC": true, "UNICAST": true, "LOCAL": true, "BROADCAST": true, "ANYCAST": true,
	"MULTICAST": true, "BLACKHOLE": true, "UNREACHABLE": true, "PROHIBIT": true, "THROW": true, "NAT": true, "XRESOLVE": true}

func addrTypeList(v string) bool {
	for _, t := range strings.Split(v, ",") {
		if !addrTypes[t] {
			return false
		}
	}
	return true
}

// addrtypeMatch: " ADDRTYPE match src-type !LOCAL dst-type LOCAL limit-in
// limit-out" (revision 0 prints "dst-typeLOCAL").
func addrtypeMatch(x *prose) (topology.Match, bool) {
	x.next()
	if x.next() != "match" {
		return topology.Match{}, false
	}
	m := topology.Match{Name: "addrtype"}
	for !x.done() {
		w := x.peek()
		switch {
		case w == "src-type" || w == "dst-type":
			x.next()
			v, neg := strings.CutPrefix(x.next(), "!")
			if !addrTypeList(v) {
				return m, false
			}
			m.Opts = append(m.Opts, topology.Option{Name: w, Neg: neg, Args: []string{v}})
			continue
		case strings.HasPrefix(w, "dst-type") && len(w) > len("dst-type"):
			v, neg := strings.CutPrefix(w[len("dst-type"):], "!")
			if !addrTypeList(v) {
				return m, false
			}
			m.Opts = append(m.Opts, topology.Option{Name: "dst-type", Neg: neg, Args: []string{v}})
		case w == "limit-in":
			m.Opts = append(m.Opts, topology.Option{Name: "limit-iface-in"})
		case w == "limit-out":
			m.Opts = append(m.Opts, topology.Option{Name: "limit-iface-out"})
		default:
			return m, len(m.Opts) > 0
		}
		x.next()
	}
	return m, len(m.Opts) > 0
}

// markMatch: " mark match [!] 0x100[/0xff]" (revision 0: "MARK match").
func markMatch(x *prose) (topology.Match, bool) {
	x.next()
	if x.next() != "match" {
		return topology.Match{}, false
	}
	neg := x.peek() == "!"
	if neg {
		x.next()
	}
	v := x.next()
	if !strings.HasPrefix(v, "0x") {
		return topology.Match{}, false
	}
	return topology.Match{Name: "mark", Opts: []topology.Option{{Name: "mark", Neg: neg, Args: []string{v}}}}, true
}

// statisticMatch: " statistic mode random [!] probability P" or " statistic
// mode nth [!] every N [packet P]"; iptables-save always prints --packet.
func statisticMatch(x *prose) (topology.Match, bool) {
	x.next()
	if x.next() != "mode" {
		return topology.Match{}, false
	}
	mode := x.next()
	m := topology.Match{Name: "statistic", Opts: []topology.Option{{Name: "mode", Args: []string{mode}}}}
	neg := x.peek() == "!"
	if neg {
		x.next()
	}
	key := map[string]string{"random": "probability", "nth": "every"}[mode]
	if key == "" || x.next() != key {
		return m, false
	}
	m.Opts = append(m.Opts, topology.Option{Name: key, Neg: neg, Args: []string{x.next()}})
	if mode == "nth" {
		packet := "0"
		if x.peek() == "packet" {
			x.next()
			packet = x.next()
		}
		m.Opts = append(m.Opts, topology.Option{Name: "packet", Args: []string{packet}})
	}
	return m, true
}

// ctWords are libxt_conntrack's options (conntrack_dump prints them as save
// does, without the dashes and without the module's name), each with one
// value; ctdir's value carries its negation.
var ctWords = map[string]bool{"ctstate": true, "ctproto": true, "ctorigsrc": true, "ctorigdst": true, "ctreplsrc": true,
	"ctrepldst": true, "ctorigsrcport": true, "ctorigdstport": true, "ctreplsrcport": true, "ctrepldstport": true,
	"ctstatus": true, "ctexpire": true, "ctdir": true}

// ipvsWords are libxt_ipvs's (ipvs_mt_dump, the same for print and save);
// "ipvs" takes no value.
var ipvsWords = map[string]bool{"ipvs": false, "vproto": true, "vaddr": true, "vport": true, "vdir": true, "vmethod": true, "vportctl": true}

// optionRun reads consecutive "[!] WORD [VALUE]" options of a module that
// prints no name of its own into one match. The words of two such matches
// in a row read as one match with both options: the same test.
func optionRun(x *prose, module string, words map[string]bool) (topology.Match, bool) {
	m := topology.Match{Name: module}
	for !x.done() {
		start := x.i
		neg := x.peek() == "!"
		if neg {
			x.next()
		}
		w := x.next()
		takes, ok := words[w]
		if !ok {
			x.i = start
			break
		}
		o := topology.Option{Name: w, Neg: neg}
		if takes || module == "conntrack" {
			v := x.next()
			if v == "" {
				x.i = start
				break
			}
			o.Args = []string{v}
		}
		m.Opts = append(m.Opts, o)
	}
	return m, len(m.Opts) > 0
}

// stateMatch: " state NEW,ESTABLISHED" (-m state, and the conntrack
// revision that stands in for it).
func stateMatch(x *prose) (topology.Match, bool) {
	start := x.i
	neg := x.peek() == "!"
	if neg {
		x.next()
	}
	if x.next() != "state" {
		x.i = start
		return topology.Match{}, false
	}
	v := x.next()
	if v == "" {
		x.i = start
		return topology.Match{}, false
	}
	return topology.Match{Name: "state", Opts: []topology.Option{{Name: "state", Neg: neg, Args: []string{v}}}}, true
}

// targetOpts translates what is left after the matches: the target's print
// output. Words that are not the target's own print (an unknown match
// before it) make the rule undecidable; options of a target the path does
// not depend on that cannot be translated are reported and dropped.
func (p *listParser) targetOpts(r *topology.Rule, x *prose, n int) {
	if x.done() {
		return
	}
	start := x.i
	opts, ours, ok := targetWords(r.Target, x)
	if ok && x.done() {
		r.TargetOpts = opts
		return
	}
	rest := trimSpace(x.s[start:])
	if ours && !decidingTarget(r.Target) {
		p.fw.Unparsed = append(p.fw.Unparsed, topology.Unparsed{File: p.file, Line: n, Text: rest,
			Reason: fmt.Sprintf("iptables -L: options of target %s not translated (the path does not depend on them)", r.Target)})
		return
	}
	r.AddUndecidable(fmt.Sprintf("iptables -L prints %q, which does not read back exactly", clip(rest)))
}

// decidingTarget: targets whose options change the packet's path.
func decidingTarget(t string) bool {
	switch t {
	case "DNAT", "SNAT", "REDIRECT", "MASQUERADE", "MARK":
		return true
	}
	return false
}

// targetWords translates target's print output at x into its save
// options; ours says the words are that target's print (they start with
// its keyword), ok that they were all understood.
func targetWords(target string, x *prose) (opts []topology.Option, ours, ok bool) {
	w := x.peek()
	flags := func(names ...string) bool {
		for !x.done() {
			f := x.peek()
			found := false
			for _, nm := range names {
				found = found || f == nm
			}
			if !found {
				return false
			}
			opts = append(opts, topology.Option{Name: x.next()})
		}
		return true
	}
	switch target {
	case "DNAT", "SNAT":
		v, isTo := strings.CutPrefix(w, "to:")
		if !isTo {
			return nil, false, false
		}
		x.next()
		name := map[string]string{"DNAT": "to-destination", "SNAT": "to-source"}[target]
		opts = append(opts, topology.Option{Name: name, Args: []string{v}})
		return opts, true, flags("random", "random-fully", "persistent")
	case "REDIRECT", "MASQUERADE":
		want := map[string][2]string{"REDIRECT": {"redir", "ports"}, "MASQUERADE": {"masq", "ports:"}}[target]
		if w == want[0] {
			x.next()
			if x.next() != want[1] {
				return nil, true, false
			}
			opts = append(opts, topology.Option{Name: "to-ports", Args: []string{x.next()}})
		}
		return opts, w == want[0] || w == "random" || w == "random-fully", flags("random", "random-fully")
	case "MARK", "CONNMARK":
		if w != target {
			return nil, false, false
		}
		x.next()
		v, ok := xmark(x.next(), x.next())
		if !ok {
			return nil, true, false
		}
		return []topology.Option{{Name: "set-xmark", Args: []string{v}}}, true, true
	case "REJECT":
		if w != "reject-with" {
			return nil, false, false
		}
		x.next()
		return []topology.Option{{Name: "reject-with", Args: []string{x.next()}}}, true, true
	case "LOG":
		if w != "LOG" {
			return nil, false, false
		}
		x.next()
		opts, ok := logWords(x)
		return opts, true, ok
	case "CT":
		if w != "CT" {
			return nil, false, false
		}
		x.next()
		for !x.done() {
			switch f := x.next(); f {
			case "notrack":
				opts = append(opts, topology.Option{Name: "notrack"})
			case "helper", "zone":
				v := x.next()
				if _, num := atoi(v); f == "zone" && !num {
					return opts, true, false
				}
				opts = append(opts, topology.Option{Name: f, Args: []string{v}})
			default:
				return opts, true, false
			}
		}
		return opts, true, true
	}
	return nil, false, false
}

// xmark turns libxt_MARK's (and CONNMARK's) print of a revision-2 mark
// operation into the --set-xmark VALUE/MASK it saves (mark_tg_print:
// "and" prints ~mask with value 0, "or" value = mask, "xor" mask 0, "set"
// mask 0xffffffff).
func xmark(op, arg string) (string, bool) {
	a, b, hasMask := strings.Cut(arg, "/")
	v, err := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 32)
	if err != nil || !strings.HasPrefix(a, "0x") || hasMask != (op == "xset") {
		return "", false
	}
	var val, mask uint64
	switch op {
	case "set":
		val, mask = v, 0xffffffff
	case "and":
		val, mask = 0, ^v&0xffffffff
	case "or":
		val, mask = v, v
	case "xor":
		val, mask = v, 0
	case "xset":
		m, err := strconv.ParseUint(strings.TrimPrefix(b, "0x"), 16, 32)
		if err != nil || !strings.HasPrefix(b, "0x") {
			return "", false
		}
		val, mask = v, m
	default:
		return "", false
	}
	return fmt.Sprintf("0x%x/0x%x", val, mask), true
}

// logWords: LOG_print with -n, "flags N level L [prefix "P"]", into
// LOG_save's --log-prefix, --log-level (unless the default 4) and a flag
// option per XT_LOG_* bit. The prefix is the last thing on the line.
func logWords(x *prose) ([]topology.Option, bool) {
	if x.next() != "flags" {
		return nil, false
	}
	flags, ok1 := atoi(x.next())
	if x.next() != "level" {
		return nil, false
	}
	level, ok2 := atoi(x.next())
	if !ok1 || !ok2 {
		return nil, false
	}
	var opts []topology.Option
	if x.peek() == "prefix" {
		x.next()
		x.skip()
		rest := x.s[x.i:]
		if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
			return nil, false
		}
		prefix := rest[1 : len(rest)-1]
		x.i = len(x.s)
		opts = append(opts, topology.Option{Name: "log-prefix", Args: []string{prefix}, Quoted: saveQuoted(prefix)})
	}
	if level != 4 {
		opts = append(opts, topology.Option{Name: "log-level", Args: []string{strconv.Itoa(level)}})
	}
	for i, name := range []string{"log-tcp-sequence", "log-tcp-options", "log-ip-options", "log-uid", "", "log-macdecode"} {
		if flags&(1<<i) != 0 {
			if name == "" {
				return nil, false
			}
			opts = append(opts, topology.Option{Name: name})
		}
	}
	if flags&^0x2f != 0 {
		return nil, false
	}
	return opts, true
}
