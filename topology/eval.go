package topology

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Packet is the first packet of a connection as the evaluator sees it at one
// point of one namespace. The evaluator changes it as rules rewrite it.
type Packet struct {
	Proto    string // tcp, udp
	Src, Dst netip.Addr
	SPort    int
	DPort    int
	InIface  string
	OutIface string
	Mark     uint32
	// DNATed is set once a DNAT/REDIRECT rewrote the destination in the
	// current namespace (conntrack --ctstate DNAT); IPVS is set once IPVS
	// (or its emulation) handled it (-m ipvs --ipvs).
	DNATed bool
	IPVS   bool
}

func (p Packet) String() string {
	return fmt.Sprintf("%s %s:%d -> %s:%d", p.Proto, p.Src, p.SPort, p.Dst, p.DPort)
}

// Step is one rule that acted on the packet.
type Step struct {
	Table string
	Chain string
	Rule  *Rule
}

// Decision is the outcome of one table's chain for a packet.
type Decision struct {
	// Verdict is ACCEPT, DROP, REJECT, DNAT, SNAT, REDIRECT, MASQUERADE,
	// or "" when the chain fell through to an ACCEPT policy.
	Verdict string
	// By is the rule that decided, nil for a policy.
	By *Step
	// Policy is set when the chain's policy decided.
	Policy string
	// Marks are the MARK rules applied on the way.
	Marks []Step
	// Notes are evaluation caveats (matches that could not be evaluated).
	Notes []string
}

// evaluator walks one namespace's firewall.
type evaluator struct {
	ns *Namespace
	// lb makes a matching rule of the iptables emulation of IPVS end the
	// walk with the verdict "LB": path reconstruction models that stage
	// as a load balancer with all its backends, not as the one DNAT the
	// first statistic rule would pick.
	lb bool
}

// Eval runs pkt through table/chain of ns's firewall the way netfilter does:
// rules in order, jumps and gotos into user chains, RETURN, the built-in
// chain's policy at the end. Non-terminating targets (MARK, LOG, counters)
// apply and continue. pkt is updated in place (marks, NAT).
func Eval(ns *Namespace, table, chain string, pkt *Packet) Decision {
	e := evaluator{ns: ns}
	return e.run(table, chain, pkt)
}

func (e *evaluator) run(table, chain string, pkt *Packet) Decision {
	var d Decision
	t := e.ns.Firewall.Table(table)
	c := t.Chain(chain)
	if c == nil {
		return d // no such table/chain: nothing happens (ACCEPT)
	}
	type frame struct {
		c *Chain
		i int
	}
	stack := []frame{{c, 0}}
	for steps := 0; len(stack) > 0; steps++ {
		if steps > 100000 {
			d.Notes = append(d.Notes, fmt.Sprintf("%s/%s: evaluation stopped: rule loop", table, chain))
			return d
		}
		top := &stack[len(stack)-1]
		if top.i >= len(top.c.Rules) {
			stack = stack[:len(stack)-1]
			if len(stack) == 0 && c.Policy != "-" && c.Policy != "ACCEPT" && c.Policy != "" {
				d.Verdict, d.Policy = c.Policy, c.Policy
			}
			continue
		}
		r := top.c.Rules[top.i]
		top.i++
		ok, notes := matches(e.ns, r, pkt)
		d.Notes = append(d.Notes, notes...)
		if !ok {
			continue
		}
		st := Step{Table: table, Chain: top.c.Name, Rule: r}
		if e.lb && isEmulationRule(r) {
			d.Verdict, d.By = "LB", &st
			return d
		}
		switch r.Target {
		case "":
		case "ACCEPT":
			d.Verdict, d.By = "ACCEPT", &st
			return d
		case "DROP", "REJECT":
			d.Verdict, d.By = r.Target, &st
			return d
		case "RETURN":
			stack = stack[:len(stack)-1]
			if len(stack) == 0 && c.Policy != "-" && c.Policy != "ACCEPT" && c.Policy != "" {
				d.Verdict, d.Policy = c.Policy, c.Policy
			}
		case "MARK":
			applyMark(r, pkt)
			d.Marks = append(d.Marks, st)
		case "DNAT", "REDIRECT", "SNAT", "MASQUERADE":
			applyNAT(e.ns, r, pkt)
			d.Verdict, d.By = r.Target, &st
			return d
		default:
			if uc := t.Chain(r.Target); uc != nil {
				if r.Goto {
					stack[len(stack)-1] = frame{uc, 0}
				} else {
					if len(stack) > 64 {
						d.Notes = append(d.Notes, fmt.Sprintf("%s/%s: jump depth over 64", table, chain))
						return d
					}
					stack = append(stack, frame{uc, 0})
				}
				continue
			}
			// LOG, CONNMARK, TRACE, ...: non-terminating as far as the
			// path is concerned.
		}
	}
	return d
}

// matches evaluates every match of r against pkt. Matches it cannot decide
// are assumed not to match and reported.
func matches(ns *Namespace, r *Rule, pkt *Packet) (bool, []string) {
	if r.Proto != nil && !neg(r.Proto.Neg, protoIs(r.Proto.Value, pkt.Proto)) {
		return false, nil
	}
	if r.Src != nil && !neg(r.Src.Neg, inPrefix(r.Src.Value, pkt.Src)) {
		return false, nil
	}
	if r.Dst != nil && !neg(r.Dst.Neg, inPrefix(r.Dst.Value, pkt.Dst)) {
		return false, nil
	}
	if r.InIface != nil && !neg(r.InIface.Neg, ifaceIs(r.InIface.Value, pkt.InIface)) {
		return false, nil
	}
	if r.OutIface != nil && !neg(r.OutIface.Neg, ifaceIs(r.OutIface.Value, pkt.OutIface)) {
		return false, nil
	}
	if r.Fragment != nil && !r.Fragment.Neg {
		return false, nil // a connection's first packet is not a fragment
	}
	var notes []string
	for i := range r.Matches {
		m := &r.Matches[i]
		ok, known := matchModule(ns, m, pkt)
		if !known {
			notes = append(notes, fmt.Sprintf("%s: match %q not evaluated, assumed not to match", ruleRef(r), m.Name))
			return false, notes
		}
		if !ok {
			return false, notes
		}
	}
	return true, notes
}

func ruleRef(r *Rule) string {
	if r.Line > 0 {
		return fmt.Sprintf("line %d", r.Line)
	}
	return r.Text
}

func neg(n, v bool) bool { return v != n }

func protoIs(want, have string) bool {
	switch want {
	case "all", "0":
		return true
	case "6":
		want = "tcp"
	case "17":
		want = "udp"
	}
	return strings.EqualFold(want, have)
}

// ParsePrefix reads an iptables address: "10.0.0.4", "10.0.0.0/24",
// "10.0.0.0/255.255.255.0".
func ParsePrefix(s string) (netip.Prefix, bool) {
	if a, m, ok := strings.Cut(s, "/"); ok {
		if bits, err := strconv.Atoi(m); err == nil {
			p, err := netip.ParsePrefix(a + "/" + strconv.Itoa(bits))
			return p, err == nil
		}
		addr, err1 := netip.ParseAddr(a)
		mask, err2 := netip.ParseAddr(m)
		if err1 != nil || err2 != nil || !mask.Is4() {
			return netip.Prefix{}, false
		}
		b := mask.As4()
		bits := 0
		for _, x := range b {
			for x&0x80 != 0 {
				bits++
				x <<= 1
			}
		}
		p, err := addr.Prefix(bits)
		return p, err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

func inPrefix(s string, a netip.Addr) bool {
	p, ok := ParsePrefix(s)
	return ok && a.IsValid() && p.Contains(a)
}

func ifaceIs(pattern, iface string) bool {
	if strings.HasSuffix(pattern, "+") {
		return strings.HasPrefix(iface, strings.TrimSuffix(pattern, "+"))
	}
	return pattern == iface
}

// matchModule evaluates one -m module; known is false for modules (or
// options) the evaluator does not understand.
func matchModule(ns *Namespace, m *Match, pkt *Packet) (ok, known bool) {
	switch m.Name {
	case "comment", "tcp", "udp", "multiport", "addrtype", "mark", "conntrack", "state", "ipvs", "statistic":
	default:
		return false, false
	}
	for _, o := range m.Opts {
		var v bool
		switch o.Name {
		case "comment":
			v = true
		case "dport", "destination-port":
			v = portIn(o.Arg(), pkt.DPort)
		case "sport", "source-port":
			v = portIn(o.Arg(), pkt.SPort)
		case "dports", "destination-ports":
			v = portList(o.Arg(), pkt.DPort)
		case "sports", "source-ports":
			v = portList(o.Arg(), pkt.SPort)
		case "ports":
			v = portList(o.Arg(), pkt.DPort) || portList(o.Arg(), pkt.SPort)
		case "dst-type":
			v = addrTypeIs(ns, o.Arg(), pkt.Dst)
		case "src-type":
			v = addrTypeIs(ns, o.Arg(), pkt.Src)
		case "limit-iface-in", "limit-iface-out", "tcp-flags", "syn":
			v = true // the first packet of a connection on the path
			if o.Name == "syn" {
				v = pkt.Proto == "tcp"
			}
		case "mark":
			val, mask, good := ParseMark(o.Arg())
			if !good {
				return false, false
			}
			v = pkt.Mark&mask == val
		case "ctstate", "state":
			v = false
			for _, s := range strings.Split(o.Arg(), ",") {
				if s == "NEW" || (s == "DNAT" && pkt.DNATed) {
					v = true
				}
			}
		case "ipvs":
			v = pkt.IPVS
		case "mode", "every", "packet", "probability":
			v = true // statistic: some packets; the LB stage models it
		default:
			return false, false
		}
		if v == o.Neg {
			return false, true
		}
	}
	return true, true
}

func portIn(spec string, port int) bool {
	lo, hi, ok := strings.Cut(spec, ":")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return false
	}
	if !ok {
		return port == a
	}
	b, err := strconv.Atoi(hi)
	if hi == "" {
		b, err = 65535, nil
	}
	return err == nil && port >= a && port <= b
}

func portList(spec string, port int) bool {
	for _, p := range strings.Split(spec, ",") {
		if portIn(p, port) {
			return true
		}
	}
	return false
}

func addrTypeIs(ns *Namespace, types string, a netip.Addr) bool {
	for _, t := range strings.Split(types, ",") {
		switch t {
		case "LOCAL":
			if ns.IsLocal(a) {
				return true
			}
		case "UNICAST":
			if !a.IsMulticast() && !ns.IsLocal(a) {
				return true
			}
		case "MULTICAST":
			if a.IsMulticast() {
				return true
			}
		}
	}
	return false
}

// IsLocal reports whether a is a local address of the namespace (what the
// kernel's local routing table holds): any address of its links, and
// 127.0.0.0/8.
func (ns *Namespace) IsLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	_, ok := ns.Owns(a)
	return ok
}

// ParseMark reads "0x100", "256", "0x100/0xffffffff".
func ParseMark(s string) (val, mask uint32, ok bool) {
	v, m, has := strings.Cut(s, "/")
	x, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	mask = 0xffffffff
	if has {
		y, err := strconv.ParseUint(m, 0, 32)
		if err != nil {
			return 0, 0, false
		}
		mask = uint32(y)
	}
	return uint32(x), mask, true
}

func applyMark(r *Rule, pkt *Packet) {
	if o := r.TargetOpt("set-xmark"); o != nil {
		if v, m, ok := ParseMark(o.Arg()); ok {
			pkt.Mark = pkt.Mark&^m ^ v
		}
	} else if o := r.TargetOpt("set-mark"); o != nil {
		if v, m, ok := ParseMark(o.Arg()); ok {
			pkt.Mark = pkt.Mark&^m | v
		}
	} else if o := r.TargetOpt("or-mark"); o != nil {
		if v, _, ok := ParseMark(o.Arg()); ok {
			pkt.Mark |= v
		}
	} else if o := r.TargetOpt("and-mark"); o != nil {
		if v, _, ok := ParseMark(o.Arg()); ok {
			pkt.Mark &= v
		}
	}
}

// MarkOf returns the mark value a MARK rule sets.
func MarkOf(r *Rule) (uint32, bool) {
	var p Packet
	applyMark(r, &p)
	return p.Mark, r.Target == "MARK"
}

// NATTo parses a --to-destination/--to-source argument "ip[-ip][:port[-port]]".
func NATTo(s string) (netip.Addr, int, bool) {
	host, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		host, port = s[:i], s[i+1:]
	}
	host, _, _ = strings.Cut(host, "-")
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	p := 0
	if port != "" {
		port, _, _ = strings.Cut(port, "-")
		if p, err = strconv.Atoi(port); err != nil {
			return netip.Addr{}, 0, false
		}
	}
	return a, p, true
}

func applyNAT(ns *Namespace, r *Rule, pkt *Packet) {
	switch r.Target {
	case "DNAT":
		if a, p, ok := NATTo(r.TargetOpt("to-destination").Arg()); ok {
			pkt.Dst = a
			if p != 0 {
				pkt.DPort = p
			}
			pkt.DNATed = true
		}
	case "REDIRECT":
		if o := r.TargetOpt("to-ports"); o != nil {
			p, _, _ := strings.Cut(o.Arg(), "-")
			if n, err := strconv.Atoi(p); err == nil {
				pkt.DPort = n
			}
		}
		if l := ns.Link(pkt.InIface); l != nil && len(l.Addrs) > 0 {
			pkt.Dst = l.Addrs[0].Addr()
		}
		pkt.DNATed = true
	case "SNAT":
		if a, p, ok := NATTo(r.TargetOpt("to-source").Arg()); ok {
			pkt.Src = a
			if p != 0 {
				pkt.SPort = p
			}
		}
	case "MASQUERADE":
		if l := ns.Link(pkt.OutIface); l != nil {
			for _, a := range l.Addrs {
				if a.Addr().Is4() {
					pkt.Src = a.Addr()
					break
				}
			}
		}
	}
}
