package topology

import (
	"fmt"
	"net/netip"
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
	// LB, UNKNOWN, or "" when the chain fell through to an ACCEPT policy.
	Verdict Action
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
	// walk with the verdict ActLB: path reconstruction models that stage
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
	if t == nil && e.ns.Firewall != nil && !e.ns.Firewall.Collected(table) {
		d.Verdict = EvalUnknown
		d.Notes = append(d.Notes, fmt.Sprintf("%s/%s: unknown: table %s was not collected", table, chain, table))
		return d
	}
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
		if top.i >= top.c.Len() {
			stack = stack[:len(stack)-1]
			if len(stack) == 0 && c.Policy != "-" && c.Policy != "ACCEPT" && c.Policy != "" {
				d.Verdict, d.Policy = Action(c.Policy), c.Policy
			}
			continue
		}
		r := top.c.Rule(top.i)
		top.i++
		res, note := matches(e.ns, r, pkt)
		if note != "" {
			d.Notes = append(d.Notes, note)
		}
		if res == noMatch {
			continue
		}
		st := Step{Table: table, Chain: top.c.Name, Rule: r}
		if res == unknown {
			if !decides(t, r) {
				continue // whether it matches changes nothing on the path
			}
			d.Verdict, d.By = EvalUnknown, &st
			d.Notes = append(d.Notes, fmt.Sprintf("%s/%s: unknown whether %s matches (%s): not followed past it", table, top.c.Name, ruleRef(r), undecidedWhy(r)))
			return d
		}
		if e.lb && isEmulationRule(r) {
			d.Verdict, d.By = ActLB, &st
			return d
		}
		switch r.Target {
		case "":
		case "ACCEPT":
			d.Verdict, d.By = ActAccept, &st
			return d
		case "DROP", "REJECT":
			d.Verdict, d.By = Action(r.Target), &st
			return d
		case "RETURN":
			stack = stack[:len(stack)-1]
			if len(stack) == 0 && c.Policy != "-" && c.Policy != "ACCEPT" && c.Policy != "" {
				d.Verdict, d.Policy = Action(c.Policy), c.Policy
			}
		case "MARK":
			if r.SetMark != nil {
				pkt.Mark = r.SetMark.Apply(pkt.Mark)
			}
			d.Marks = append(d.Marks, st)
		case "DNAT", "REDIRECT", "SNAT", "MASQUERADE":
			applyNAT(e.ns, r, pkt)
			d.Verdict, d.By = Action(r.Target), &st
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

type matchResult int

const (
	noMatch matchResult = iota
	match
	unknown
)

// matches evaluates r against pkt: every header match and match module in
// order, the first miss deciding. A rule whose decidable parts all match but
// that is Undecidable (or not compiled) is unknown. Match modules the
// evaluator does not understand are assumed not to match and reported in
// the note.
func matches(ns *Namespace, r *Rule, pkt *Packet) (matchResult, string) {
	if r.Proto != nil && !neg(r.Proto.Neg, protoIs(r.Proto.Value, pkt.Proto)) {
		return noMatch, ""
	}
	res := match
	for _, h := range []struct {
		n *Negatable
		a netip.Addr
	}{{r.Src, pkt.Src}, {r.Dst, pkt.Dst}} {
		switch {
		case h.n == nil:
		case !h.n.Net.IsValid():
			res = unknown // not compiled, or a non-contiguous mask
		case !neg(h.n.Neg, h.a.IsValid() && h.n.Net.Contains(h.a)):
			return noMatch, ""
		}
	}
	if r.InIface != nil && !neg(r.InIface.Neg, ifaceIs(r.InIface.Value, pkt.InIface)) {
		return noMatch, ""
	}
	if r.OutIface != nil && !neg(r.OutIface.Neg, ifaceIs(r.OutIface.Value, pkt.OutIface)) {
		return noMatch, ""
	}
	if r.Fragment != nil && !r.Fragment.Neg {
		return noMatch, "" // a connection's first packet is not a fragment
	}
	for i := range r.Matches {
		m := &r.Matches[i]
		switch matchModule(ns, m, pkt) {
		case noMatch:
			return noMatch, ""
		case unknown:
			res = unknown
		case notUnderstood:
			return noMatch, fmt.Sprintf("%s: match %q not evaluated, assumed not to match", ruleRef(r), m.Name)
		}
	}
	if r.Undecidable != "" || !targetCompiled(r) {
		res = unknown
	}
	return res, ""
}

// targetCompiled reports whether the target's arguments the evaluator uses
// were typed by Compile.
func targetCompiled(r *Rule) bool {
	switch r.Target {
	case "DNAT", "SNAT":
		return r.NAT != nil
	case "REDIRECT", "MASQUERADE":
		return r.NAT != nil || r.TargetOpt("to-ports") == nil
	case "MARK":
		return r.SetMark != nil
	}
	return true
}

// undecidedWhy says why a rule is unknown.
func undecidedWhy(r *Rule) string {
	if r.Undecidable != "" {
		return r.Undecidable
	}
	return "its arguments were not compiled"
}

// decides reports whether it matters for the path whether r matches: the
// targets the evaluator acts on, and jumps into the table's chains. LOG,
// counting rules and the like change nothing.
func decides(t *Table, r *Rule) bool {
	switch r.Target {
	case "ACCEPT", "DROP", "REJECT", "RETURN", "MARK", "DNAT", "REDIRECT", "SNAT", "MASQUERADE":
		return true
	}
	return r.Target != "" && t.Chain(r.Target) != nil
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
	case "1":
		want = "icmp"
	case "50":
		want = "esp"
	case "51":
		want = "ah"
	}
	return strings.EqualFold(want, have)
}

// ParsePrefix reads an address as iptables prints it: "10.0.0.4",
// "10.0.0.0/24", "10.0.0.0/255.255.0.0" (a contiguous mask).
func ParsePrefix(s string) (netip.Prefix, bool) {
	p, why := parseNet(s)
	return p, why == "" && p.IsValid()
}

func ifaceIs(pattern, iface string) bool {
	if strings.HasSuffix(pattern, "+") {
		return strings.HasPrefix(iface, strings.TrimSuffix(pattern, "+"))
	}
	return pattern == iface
}

// notUnderstood is matchModule's answer for a module (or option) the
// evaluator does not know.
const notUnderstood matchResult = -1

// matchModule evaluates one -m module with the typed arguments Compile
// filled; unknown when an argument was not compiled.
func matchModule(ns *Namespace, m *Match, pkt *Packet) matchResult {
	if m.Name == "set" {
		return dockerSet(ns, m, pkt)
	}
	switch m.Name {
	case "comment", "tcp", "udp", "multiport", "addrtype", "mark", "conntrack", "state", "ipvs", "statistic":
	default:
		return notUnderstood
	}
	res := match
	for i := range m.Opts {
		o := &m.Opts[i]
		var v bool
		switch o.Name {
		case "comment":
			v = true
		case "dport", "destination-port", "dports", "destination-ports":
			v = inPorts(o.Ports, pkt.DPort)
		case "sport", "source-port", "sports", "source-ports":
			v = inPorts(o.Ports, pkt.SPort)
		case "ports":
			v = inPorts(o.Ports, pkt.DPort) || inPorts(o.Ports, pkt.SPort)
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
			if o.Mark == nil {
				res = unknown
				continue
			}
			v = pkt.Mark&o.Mark.Mask == o.Mark.Value
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
			return notUnderstood
		}
		if o.Ports == nil && isPortOpt(m.Name, o.Name) {
			res = unknown // not compiled
			continue
		}
		if v == o.Neg {
			return noMatch
		}
	}
	return res
}

func isPortOpt(match, opt string) bool {
	ok, _ := portOpt(match, opt)
	return ok
}

func inPorts(ports []PortRange, port int) bool {
	for _, p := range ports {
		if p.Contains(port) {
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

// MarkOf returns the mark a MARK rule sets on an unmarked packet.
func MarkOf(r *Rule) (uint32, bool) {
	if r.Target != "MARK" || r.SetMark == nil {
		return 0, false
	}
	return r.SetMark.Apply(0), true
}

// applyNAT rewrites pkt as r's NAT target does, from the typed range: the
// lowest address of an address range; a port stays when it is inside the
// port range (nf_nat_get_unique_tuple keeps an in-range tuple), else it
// becomes the range's lowest.
func applyNAT(ns *Namespace, r *Rule, pkt *Packet) {
	n := r.NAT
	if n == nil {
		n = &NATRange{}
	}
	switch r.Target {
	case "DNAT":
		if n.Addr.IsValid() {
			pkt.Dst = n.Addr
		}
		pkt.DPort = natPort(pkt.DPort, n)
		pkt.DNATed = true
	case "REDIRECT":
		pkt.DPort = natPort(pkt.DPort, n)
		if l := ns.Link(pkt.InIface); l != nil && len(l.Addrs) > 0 {
			pkt.Dst = l.Addrs[0].Addr()
		}
		pkt.DNATed = true
	case "SNAT":
		if n.Addr.IsValid() {
			pkt.Src = n.Addr
		}
		pkt.SPort = natPort(pkt.SPort, n)
	case "MASQUERADE":
		if l := ns.Link(pkt.OutIface); l != nil {
			for _, a := range l.Addrs {
				if a.Addr().Is4() {
					pkt.Src = a.Addr()
					break
				}
			}
		}
		pkt.SPort = natPort(pkt.SPort, n)
	}
}

func natPort(cur int, n *NATRange) int {
	if n.Port == 0 || (PortRange{n.Port, n.PortHi}).Contains(cur) {
		return cur
	}
	return int(n.Port)
}
