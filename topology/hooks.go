package topology

import "strings"

// HookStep is where a packet was decided on its way through a namespace's
// netfilter hooks: the table and built-in chain, and what it decided.
type HookStep struct {
	Table, Chain string
	Decision     Decision
}

// hookChain is one table's built-in chain on a packet's way.
type hookChain struct{ table, chain string }

// The hooks a packet crosses, in netfilter's order (the priorities of
// iptables' tables at each hook: raw -300, mangle -150, nat -100 for
// PREROUTING and OUTPUT, filter 0; at INPUT mangle -150, filter 0, nat 100;
// at POSTROUTING mangle -150, nat 100).
var (
	localInHooks = []hookChain{
		{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"nat", "PREROUTING"},
		{"mangle", "INPUT"}, {"filter", "INPUT"}, {"nat", "INPUT"},
	}
	localOutHooks = []hookChain{
		{"raw", "OUTPUT"}, {"mangle", "OUTPUT"}, {"nat", "OUTPUT"}, {"filter", "OUTPUT"},
		{"mangle", "POSTROUTING"}, {"nat", "POSTROUTING"},
	}
)

// LocalIn runs a packet arriving in ns for one of its own addresses
// through every table on its way in (raw, mangle and nat PREROUTING, then
// mangle, filter and nat INPUT), as netfilter does. It returns the steps
// that decided something (a verdict, a NAT, marks), and the step that
// ended the packet: one that drops it, or one that cannot be decided
// (EvalUnknown: a rule undecidable or a table not collected); nil when the
// packet is delivered. A firewall not collected is one unknown step. pkt
// is changed as the rules change it (marks, NAT).
func LocalIn(ns *Namespace, pkt *Packet) (steps []HookStep, end *HookStep) {
	return runHooks(ns, localInHooks, pkt)
}

// LocalOut is LocalIn for a packet the namespace sends: raw, mangle, nat
// and filter OUTPUT, then mangle and nat POSTROUTING.
func LocalOut(ns *Namespace, pkt *Packet) (steps []HookStep, end *HookStep) {
	return runHooks(ns, localOutHooks, pkt)
}

func runHooks(ns *Namespace, hooks []hookChain, pkt *Packet) ([]HookStep, *HookStep) {
	var steps []HookStep
	if ns == nil || ns.Firewall == nil {
		st := HookStep{Decision: Decision{Verdict: EvalUnknown, Notes: []string{"the firewall was not collected"}}}
		return nil, &st
	}
	for _, h := range hooks {
		d := Eval(ns, h.table, h.chain, pkt)
		if d.Verdict == "" && d.By == nil && len(d.Marks) == 0 {
			continue
		}
		steps = append(steps, HookStep{Table: h.table, Chain: h.chain, Decision: d})
		if d.Verdict.Drops() || d.Verdict == EvalUnknown {
			end := steps[len(steps)-1]
			return steps, &end
		}
	}
	return steps, nil
}

// Prerouting runs a packet arriving in ns through raw, mangle and nat
// PREROUTING (LocalIn's first half, for a packet routed on after).
func Prerouting(ns *Namespace, pkt *Packet) (steps []HookStep, end *HookStep) {
	return runHooks(ns, localInHooks[:3], pkt)
}

// ForwardOut runs a packet ns routes on through mangle and filter FORWARD,
// then mangle and nat POSTROUTING; the caller sets pkt.OutIface.
func ForwardOut(ns *Namespace, pkt *Packet) (steps []HookStep, end *HookStep) {
	return runHooks(ns, []hookChain{{"mangle", "FORWARD"}, {"filter", "FORWARD"}, {"mangle", "POSTROUTING"}, {"nat", "POSTROUTING"}}, pkt)
}

// WithFirewall is a copy of ns whose rules are fw: the namespace seen
// through another iptables backend (OtherFirewall), for Eval and the hook
// runs.
func (ns *Namespace) WithFirewall(fw *Firewall) *Namespace {
	c := *ns
	c.Firewall = fw
	return &c
}

// HoldsDocker reports whether fw holds rules dockerd writes: a chain of
// Docker's (DOCKER, DOCKER-INGRESS, DOCKER-USER, DOCKER_OUTPUT, …), and
// names the first.
func (fw *Firewall) HoldsDocker() (string, bool) {
	if fw == nil {
		return "", false
	}
	for _, t := range fw.Tables {
		for _, c := range t.Chains {
			if strings.HasPrefix(c.Name, "DOCKER") {
				return t.Name + " " + c.Name, true
			}
		}
	}
	return "", false
}
