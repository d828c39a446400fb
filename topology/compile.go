package topology

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Compile parses and validates, once, every argument of r that evaluation
// uses, into the typed fields beside the text: the header addresses
// (Negatable.Net), the ports of tcp/udp/multiport (Option.Ports), the mark of
// -m mark (Option.Mark), the NAT range of DNAT/SNAT/REDIRECT/MASQUERADE
// (NAT) and the operation of MARK (SetMark). Every reader calls it for every
// rule it builds; the evaluator and everyone else ask the typed fields and
// never read option text again.
//
// An argument that does not parse is an error naming the option and the
// value: it is never wrapped (port 70000 is not 4464), defaulted (mark zzz is
// not 0) or replaced (--to-ports abc does not keep the old port). The caller
// adds where the rule came from (file:line, or netns/table/chain/rule). Valid
// iptables that the evaluator cannot follow exactly (a non-contiguous
// address mask, several NAT ranges) sets Undecidable instead. Compile is
// idempotent.
func (r *Rule) Compile() error { return r.CompileWith(nil) }

// CompileWith is Compile taking the typed arguments' storage from s (nil: a
// fresh one), for readers that compile many rules.
func (r *Rule) CompileWith(s *Slab) error {
	if s == nil {
		s = &Slab{}
	}
	if err := r.compileNet("-s", r.Src); err != nil {
		return err
	}
	if err := r.compileNet("-d", r.Dst); err != nil {
		return err
	}
	if err := checkHeader(r); err != nil {
		return err
	}
	for i := range r.Matches {
		m := &r.Matches[i]
		for j := range m.Opts {
			if err := compileMatchOpt(s, m.Name, &m.Opts[j]); err != nil {
				return err
			}
		}
		if m.Name == "statistic" {
			if err := checkStatistic(m); err != nil {
				return err
			}
		}
	}
	return r.compileTarget(s)
}

// checkHeader refuses the interfaces and protocols iptables would: an
// interface name longer than 15 bytes or holding / : or blanks, a protocol
// number past 255 or a name that is not one.
func checkHeader(r *Rule) error {
	if r.InIface != nil && !ifaceName(r.InIface.Value) {
		return fmt.Errorf("-i %q: not an interface name (at most 15 bytes, no / : or blanks)", r.InIface.Value)
	}
	if r.OutIface != nil && !ifaceName(r.OutIface.Value) {
		return fmt.Errorf("-o %q: not an interface name (at most 15 bytes, no / : or blanks)", r.OutIface.Value)
	}
	if r.Proto == nil {
		return nil
	}
	v := r.Proto.Value
	switch v {
	case "tcp", "udp", "icmp", "all":
		return nil
	}
	if n, ok := decimal(v); ok {
		if n > 255 {
			return fmt.Errorf("-p %q: protocol number out of range (0-255)", v)
		}
		return nil
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("-p %q: not a protocol", v)
		}
	}
	if v == "" {
		return fmt.Errorf("-p without a protocol")
	}
	return nil
}

func ifaceName(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '/', ' ', '\t', ':':
			return false
		}
	}
	return true
}

// checkStatistic refuses what libxt_statistic would: --every 0, a --packet
// not below --every, a --probability outside 0-1.
func checkStatistic(m *Match) error {
	every := m.Opt("every")
	for _, o := range m.Opts {
		if (o.Name == "every" || o.Name == "packet" || o.Name == "probability" || o.Name == "mode") && len(o.Args) != 1 {
			return fmt.Errorf("--%s wants one argument, has %d", o.Name, len(o.Args))
		}
		switch o.Name {
		case "every":
			if n, ok := decimal(o.Arg()); !ok || n < 1 || n > 1<<32-1 {
				return fmt.Errorf("--every %q: not a count of at least 1", o.Arg())
			}
		case "packet":
			n, ok := decimal(o.Arg())
			e, _ := decimal(every.Arg())
			if !ok || every != nil && n >= e {
				return fmt.Errorf("--packet %q: not a count from 0 to --every - 1", o.Arg())
			}
		case "probability":
			if f, err := strconv.ParseFloat(o.Arg(), 64); err != nil || !(f >= 0 && f <= 1) {
				return fmt.Errorf("--probability %q: not a probability from 0 to 1", o.Arg())
			}
		}
	}
	return nil
}

// Slab lends Compile the storage of typed arguments in chunks that grow
// with use, so a reader compiling many rules allocates per chunk, not per
// argument. The zero value is ready; a Slab is not safe for concurrent use.
type Slab struct {
	ports chunk[PortRange]
	nats  chunk[NATRange]
	marks chunk[MarkMask]
	sets  chunk[MarkSet]
	n     int // size of the last chunk
}

// chunk is the array a Slab carves one type from: base whole, free the
// part not handed out yet.
type chunk[T any] struct{ base, free []T }

// Rewind takes back everything the slab handed out since its last refill
// of each type, for a reader that compiles a rule only to check it and
// then drops it: the next rule's arguments reuse the storage.
func (s *Slab) Rewind() {
	s.ports.free, s.nats.free, s.marks.free, s.sets.free = s.ports.base, s.nats.base, s.marks.base, s.sets.base
}

// carve returns n elements of c, refilling it when short; the result's
// capacity is n, so appending to it never touches its neighbours.
func carve[T any](s *Slab, c *chunk[T], n int) []T {
	if len(c.free) < n {
		s.n = min(max(2*s.n, 16), 4096)
		c.base = make([]T, max(n, s.n))
		c.free = c.base
	}
	out := c.free[:n:n]
	c.free = c.free[n:]
	return out
}

func (r *Rule) compileNet(flag string, n *Negatable) error {
	if n == nil {
		return nil
	}
	p, why := parseNet(n.Value)
	if why != "" {
		return fmt.Errorf("%s %q: %s", flag, n.Value, why)
	}
	if !p.IsValid() {
		r.AddUndecidable(fmt.Sprintf("%s %s: non-contiguous mask", flag, n.Value))
	}
	n.Net = p
	return nil
}

// AddUndecidable records a reason the evaluator cannot decide r (Compile's,
// or a reader's that lost part of the rule); reasons add up, each once.
func (r *Rule) AddUndecidable(why string) {
	if r.Undecidable == "" {
		r.Undecidable = why
	} else if !strings.Contains(r.Undecidable, why) {
		r.Undecidable += "; " + why
	}
}

// portOpt says whether opt is a port option of a match the evaluator
// knows, and whether it takes a list (multiport) or one port or range (tcp,
// udp).
func portOpt(match, opt string) (isPort, list bool) {
	switch match {
	case "tcp", "udp":
		switch opt {
		case "dport", "sport", "destination-port", "source-port":
			return true, false
		}
	case "multiport":
		switch opt {
		case "dports", "sports", "ports", "destination-ports", "source-ports":
			return true, true
		}
	}
	return false, false
}

func compileMatchOpt(s *Slab, match string, o *Option) error {
	isPort, list := portOpt(match, o.Name)
	isMark := match == "mark" && o.Name == "mark"
	if !isPort && !isMark {
		return nil
	}
	if len(o.Args) != 1 {
		return fmt.Errorf("--%s wants one argument, has %d", o.Name, len(o.Args))
	}
	arg := o.Args[0]
	if isMark {
		v, m, why := parseMarkMask(arg)
		if why != "" {
			return fmt.Errorf("--%s %q: %s", o.Name, arg, why)
		}
		mm := carve(s, &s.marks, 1)
		mm[0] = MarkMask{Value: v, Mask: m}
		o.Mark = &mm[0]
		return nil
	}
	n := 1
	if list {
		n += strings.Count(arg, ",")
	}
	ports := carve(s, &s.ports, n)
	rest := arg
	for i := range ports {
		it := rest
		if list {
			it, rest, _ = strings.Cut(rest, ",")
		}
		pr, why := parsePortRange(it, ':', true)
		if why != "" {
			return fmt.Errorf("--%s %q: %s", o.Name, arg, why)
		}
		ports[i] = pr
	}
	o.Ports = ports
	return nil
}

// natSpec is how a NAT target carries its range: the option, whether the
// target needs it (iptables refuses DNAT and SNAT without), and whether it
// holds only ports (--to-ports).
type natSpec struct {
	opt             string
	required, ports bool
}

func natOpt(target string) (natSpec, bool) {
	switch target {
	case "DNAT":
		return natSpec{"to-destination", true, false}, true
	case "SNAT":
		return natSpec{"to-source", true, false}, true
	case "REDIRECT", "MASQUERADE":
		return natSpec{"to-ports", false, true}, true
	}
	return natSpec{}, false
}

// markOp names the MARK target's operations (libxt_MARK: revision 2 saves
// --set-xmark; older ones and iptables-restore input use the others).
func markOp(opt string) (MarkOp, bool) {
	switch opt {
	case "set-xmark":
		return MarkXSet, true
	case "set-mark":
		return MarkSetBits, true
	case "or-mark":
		return MarkOr, true
	case "and-mark":
		return MarkAnd, true
	case "xor-mark":
		return MarkXor, true
	}
	return 0, false
}

func (r *Rule) compileTarget(s *Slab) error {
	if spec, ok := natOpt(r.Target); ok {
		r.NAT = nil
		n := 0
		for _, o := range r.TargetOpts {
			if o.Name != spec.opt {
				continue
			}
			n++
			if len(o.Args) != 1 {
				return fmt.Errorf("--%s wants one argument, has %d", o.Name, len(o.Args))
			}
			nr, why := parseNAT(o.Args[0], spec.ports)
			if why != "" {
				return fmt.Errorf("--%s %q: %s", o.Name, o.Args[0], why)
			}
			if nr.AddrHi.Less(nr.Addr) {
				// libxt_NAT does not check, the kernel takes it, and
				// which address it picks is not modelled.
				r.AddUndecidable(fmt.Sprintf("--%s %s: reversed address range", o.Name, o.Args[0]))
			}
			if n == 1 {
				nn := carve(s, &s.nats, 1)
				nn[0] = nr
				r.NAT = &nn[0]
			}
		}
		switch {
		case n == 0 && spec.required && r.Undecidable == "":
			// (an undecidable rule's options may not have been read)
			return fmt.Errorf("%s without --%s", r.Target, spec.opt)
		case n > 1:
			// Kernels before 2.6.11 took several ranges and chose among
			// them; which one a connection got is not in the rule.
			r.AddUndecidable(fmt.Sprintf("%s with %d --%s ranges: the kernel picks one per connection", r.Target, n, spec.opt))
		}
		return nil
	}
	if r.Target != "MARK" {
		return nil
	}
	r.SetMark = nil
	for _, o := range r.TargetOpts {
		op, ok := markOp(o.Name)
		if !ok {
			continue
		}
		if r.SetMark != nil {
			return fmt.Errorf("MARK with two operations (--%s after another)", o.Name)
		}
		if len(o.Args) != 1 {
			return fmt.Errorf("--%s wants one argument, has %d", o.Name, len(o.Args))
		}
		v, m, why := parseMarkMask(o.Args[0])
		if why != "" {
			return fmt.Errorf("--%s %q: %s", o.Name, o.Args[0], why)
		}
		switch op {
		case MarkOr, MarkAnd, MarkXor:
			if strings.Contains(o.Args[0], "/") {
				return fmt.Errorf("--%s %q: takes no mask", o.Name, o.Args[0])
			}
			m = 0
		}
		ms := carve(s, &s.sets, 1)
		ms[0] = MarkSet{Op: op, Value: v, Mask: m}
		r.SetMark = &ms[0]
	}
	if r.SetMark == nil && r.Undecidable == "" {
		return fmt.Errorf("MARK without --set-xmark, --set-mark, --or-mark, --and-mark or --xor-mark")
	}
	return nil
}

// parseNet reads an iptables address: "10.0.0.4", "10.0.0.0/24",
// "10.0.0.0/255.255.0.0". A valid non-contiguous mask gives an invalid
// prefix and no reason: the caller marks the rule undecidable.
func parseNet(s string) (netip.Prefix, string) {
	a, m, hasMask := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(a)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, "bad address or prefix"
	}
	if !hasMask {
		return netip.PrefixFrom(addr, addr.BitLen()), ""
	}
	if bits, ok := decimal(m); ok {
		p, err := addr.Prefix(int(min(bits, 1<<16)))
		if err != nil {
			return netip.Prefix{}, "bad address or prefix"
		}
		return p, ""
	}
	mask, err := netip.ParseAddr(m)
	if err != nil || mask.BitLen() != addr.BitLen() || mask.Zone() != "" {
		return netip.Prefix{}, "bad address or prefix"
	}
	ones, zero := 0, false
	for _, x := range mask.AsSlice() {
		for bit := 7; bit >= 0; bit-- {
			switch {
			case x&(1<<bit) == 0:
				zero = true
			case zero:
				return netip.Prefix{}, "" // a one after a zero: non-contiguous
			default:
				ones++
			}
		}
	}
	p, _ := addr.Prefix(ones)
	return p, ""
}

// parseNAT reads a NAT range as libxt_NAT prints it (sprint_range):
// "ADDR[-ADDR][:PORT[-PORT]]", "[V6[-V6]]:PORT[-PORT]", ":PORT[-PORT]", or
// with portsOnly (--to-ports) "PORT[-PORT]".
func parseNAT(s string, portsOnly bool) (NATRange, string) {
	var nr NATRange
	var addrs, ports string
	switch {
	case portsOnly:
		ports = s
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 || end+1 < len(s) && s[end+1] != ':' {
			return nr, "bad address " + strconv.Quote(s)
		}
		addrs = s[1:end]
		if end+1 < len(s) {
			ports = s[end+2:]
			if ports == "" {
				return nr, `bad port ""`
			}
		}
	case strings.Count(s, ":") > 1: // IPv6 without a port
		addrs = s
	default:
		var hasPort bool
		addrs, ports, hasPort = strings.Cut(s, ":")
		if hasPort && ports == "" {
			return nr, `bad port ""`
		}
	}
	if !portsOnly && addrs == "" && ports == "" {
		return nr, "empty range"
	}
	if addrs != "" {
		lo, hi, isRange := strings.Cut(addrs, "-")
		var why string
		if nr.Addr, why = natAddr(lo); why != "" {
			return nr, why
		}
		nr.AddrHi = nr.Addr
		if isRange {
			if nr.AddrHi, why = natAddr(hi); why != "" {
				return nr, why
			}
			if nr.Addr.BitLen() != nr.AddrHi.BitLen() {
				return nr, fmt.Sprintf("address range %s mixes IPv4 and IPv6", addrs)
			}
		}
	}
	if ports != "" {
		base, offset, shifted := strings.Cut(ports, "/")
		pr, why := parsePortRange(base, '-', false)
		if why != "" {
			return nr, why
		}
		if shifted {
			if _, ok := decimal(offset); !ok {
				return nr, "bad port offset " + strconv.Quote(offset)
			}
		}
		nr.Port, nr.PortHi = pr.Lo, pr.Hi
	}
	return nr, ""
}

func natAddr(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, "bad address " + strconv.Quote(s)
	}
	return a, ""
}

// parsePortRange reads "PORT" or "LO<sep>HI"; with open, "LO<sep>" and
// "<sep>HI" too (iptables' --dport 1024: means 1024-65535).
func parsePortRange(s string, sep byte, open bool) (PortRange, string) {
	i := strings.IndexByte(s, sep)
	if i < 0 {
		p, why := port(s)
		return PortRange{p, p}, why
	}
	lo, hi := s[:i], s[i+1:]
	var pr PortRange
	var why string
	if lo == "" && open {
		pr.Lo = 0
	} else if pr.Lo, why = port(lo); why != "" {
		return pr, why
	}
	if hi == "" && open {
		pr.Hi = 65535
	} else if pr.Hi, why = port(hi); why != "" {
		return pr, why
	}
	if pr.Lo > pr.Hi {
		return pr, fmt.Sprintf("port range %s is reversed", s)
	}
	return pr, ""
}

// port reads a port number as iptables does (xtables_strtoui with base 0:
// decimal, 0x hex, leading-0 octal); iptables-save and iptables -S print
// decimal, never service names.
func port(s string) (uint16, string) {
	n, why := number32(s)
	if why != "" {
		return 0, "bad port " + strconv.Quote(s)
	}
	if n > 65535 {
		return 0, fmt.Sprintf("port %s out of range (0-65535)", s)
	}
	return uint16(n), ""
}

// decimal reads a non-negative decimal number of at most 10 digits.
func decimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, true
}

// parseMarkMask reads "VALUE[/MASK]" the way xtables_parse_mark_mask does
// (strtoul with base 0: 0x hex, leading 0 octal, else decimal), each fitting
// 32 bits; the mask defaults to 0xffffffff.
func parseMarkMask(s string) (v, m uint32, why string) {
	vs, ms, hasMask := strings.Cut(s, "/")
	if v, why = number32(vs); why != "" {
		return 0, 0, why
	}
	m = 0xffffffff
	if hasMask {
		if m, why = number32(ms); why != "" {
			return 0, 0, why
		}
	}
	return v, m, ""
}

func number32(s string) (uint32, string) {
	if n, ok := decimal(s); ok && (len(s) == 1 || s[0] != '0') {
		if n > 1<<32-1 {
			return 0, "bad number " + strconv.Quote(s)
		}
		return uint32(n), ""
	}
	base, digits := 10, s
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if !(c >= '0' && c <= '9' || base == 16 && (c|0x20 >= 'a' && c|0x20 <= 'f')) {
			return 0, "bad number " + strconv.Quote(s)
		}
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, "bad number " + strconv.Quote(s)
	}
	return uint32(n), ""
}

// Compile compiles every rule of every table (see Rule.Compile); an error
// names the table, chain and rule (its number in the chain, from 1).
func (f *Firewall) Compile() error {
	if f == nil {
		return nil
	}
	for _, t := range f.Tables {
		for _, c := range t.Chains {
			// packed rules are compiled each time they are decoded
			for i, r := range c.Rules {
				if err := r.Compile(); err != nil {
					return fmt.Errorf("table %s chain %s rule %d: %w", t.Name, c.Name, i+1, err)
				}
			}
		}
	}
	return nil
}
