package trace

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meshtrace/meshtrace/topology"
)

// Loss attribution: a flow that stopped was last seen at one hop and never
// at the next. The kernel counts most of the reasons it drops a packet
// (a rule's or a chain policy's counter, IpExtInNoRoutes, the reverse-path
// filter, IpFragFails, UdpNoPorts, insert_failed, checksum errors, a
// link's dropped packets) in the namespace that dropped it. Around a live
// trace, every namespace on the path is snapshotted (inspect.Snapshot) and
// the counters that moved (topology.DiffCounters) are the CounterWindow;
// AttributeLosses then names, for each place flows stopped, the counters
// that moved in the namespaces between the two hops, matched to the number
// of packets lost there. Other traffic moves counters too: a cause is
// "consistent with" its counts, never a proof, and a counter that did not
// move is never named. This file is pure.

// LossCode is the kind of drop a moved counter stands for.
type LossCode string

// Loss codes.
const (
	LossRuleDrop        LossCode = "rule-drop"               // an iptables rule's DROP or REJECT counted
	LossPolicyDrop      LossCode = "policy-drop"             // a built-in chain's DROP policy counted
	LossNoRoute         LossCode = "no-route"                // IpExtInNoRoutes, IpOutNoRoutes, IpInAddrErrors (forwarding off)
	LossRPFilter        LossCode = "rp-filter"               // TcpExtIPReversePathFilter
	LossMTU             LossCode = "mtu"                     // IpFragFails, or drops on a link whose MTU its peer's does not match
	LossNoListener      LossCode = "no-listener"             // UdpNoPorts, or a reset (TcpOutRsts) where the flow was refused
	LossConntrackInsert LossCode = "conntrack-insert-failed" // nf_conntrack insert_failed, drop
	LossIPVSNoDest      LossCode = "ipvs-no-destination"     // ICMP unreachable sent where an IPVS service has no usable destination
	LossChecksum        LossCode = "checksum"                // UdpInCsumErrors, TcpInCsumErrors
	LossLinkDrop        LossCode = "link-drop"               // a link's rx/tx dropped or errors
)

// lossRank orders codes when their counts match the loss equally well:
// the specific ones (a rule, a policy) before the generic ones (a link).
var lossRank = map[LossCode]int{LossRuleDrop: 0, LossPolicyDrop: 1, LossRPFilter: 2, LossNoRoute: 3, LossMTU: 4,
	LossIPVSNoDest: 5, LossConntrackInsert: 6, LossChecksum: 7, LossNoListener: 8, LossLinkDrop: 9}

// Loss says where a flow's packets were lost and which counters that
// moved in the namespaces there are consistent with it.
type Loss struct {
	// At names the place: "between ingress_sbox/eth0 out and
	// node1/1-x/vxlan0 in", or "at web.1/eth0 in" (the last hop).
	At string `json:"at"`
	// Lost counts this flow's packets last seen there; LostThere every
	// flow's of the trace (what the counters are matched with).
	Lost      int `json:"lost"`
	LostThere int `json:"lost_there"`
	// WindowMS is how long the counters were watched (the snapshots'
	// distance).
	WindowMS int64 `json:"window_ms"`
	// Netns are the namespaces whose counters were compared ("node/netns"
	// off the primary node).
	Netns []string `json:"netns"`
	// Cause is the counter that matches best; nil when none moved (or
	// they were not collected: Summary says which).
	Cause *LossCause `json:"cause,omitempty"`
	// Also are the other counters that moved there, best first.
	Also []LossCause `json:"also,omitempty"`
	// Summary is the sentence the text output prints.
	Summary string `json:"summary"`
}

// LossCause is one counter that moved where packets were lost.
type LossCause struct {
	Code LossCode `json:"code"`
	// Evidence names the counter and its count: "host filter INPUT rule 3
	// (-p udp --dport 4789 -j DROP) counted +4".
	Evidence string `json:"evidence"`
	Node     string `json:"node,omitempty"`
	Netns    string `json:"netns"`
	// Counted is how much the counter moved in the window.
	Counted int64 `json:"counted"`
}

// CounterWindow is what moved in the counters of the namespaces on a
// trace's path between a snapshot before and one after.
type CounterWindow struct {
	Start, End time.Time
	// Deltas are the counters that moved, by NsKey(node, netns).
	Deltas map[string][]topology.CounterDelta
	// Read holds the namespaces (NsKey) read both times: only there can
	// "nothing moved" be said.
	Read map[string]bool
}

// NsRef names a namespace of a node.
type NsRef struct{ Node, Netns string }

// lossSite is where a flow stopped, for attribution: the place, the
// namespaces between its two hops and how many packets were lost there.
type lossSite struct {
	at    string
	scope []NsRef
	lost  int
	reset bool // refused by a reset: the loss is the request's, at the resetter
	// seen is when the first of the lost packets was last seen (unix
	// ns): one the capture's end cut off in flight is no loss.
	seen int64
}

// inFlight is how close to the capture's end a lost packet's last
// sighting may be before it counts as cut off in flight rather than lost
// (the sockets close one after the other: a packet crossing then is seen
// at one hop only).
const inFlight = 500 * time.Millisecond

// site makes a flow's lossSite: last is the point and direction the
// packets were last seen at, next the point expected next (-1: none, the
// route ends there), seen when the first of them was seen there.
func (a *Analysis) site(last int32, dir Dir, next int32, nextDir Dir, lost int, seen int64, reset bool) *lossSite {
	s := &lossSite{lost: lost, reset: reset, seen: seen}
	lp := a.Points[last]
	s.scope = append(s.scope, NsRef{lp.Node, lp.Netns})
	if next < 0 || int(next) >= len(a.Points) {
		s.at = "at " + a.labelDir(last, dir)
		if reset {
			s.at = "refused at " + a.labelDir(last, dir)
		}
		return s
	}
	np := a.Points[next]
	s.at = "between " + a.labelDir(last, dir) + " and " + a.labelDir(next, nextDir)
	if np.Node != lp.Node || np.Netns != lp.Netns {
		s.scope = append(s.scope, NsRef{np.Node, np.Netns})
	}
	// Across nodes the packet crosses both hosts' underlay (VXLAN).
	if np.Node != lp.Node && np.Netns != "client" && lp.Netns != "client" {
		for _, n := range []string{lp.Node, np.Node} {
			if r := (NsRef{n, "host"}); !slices.Contains(s.scope, r) {
				s.scope = append(s.scope, r)
			}
		}
	}
	return s
}

// AttributeLosses sets Loss on every flow that stopped (a Stop with a
// site), grouping the flows that stopped at the same place: their lost
// packets together are what the counters of the namespaces there are
// matched with. Packets last seen less than inFlight before the capture
// ended (the window's End) may have been in flight: no loss. A nil
// window sets nothing.
func AttributeLosses(flows []Flow, w *CounterWindow, env *Env) {
	if w == nil {
		return
	}
	total := map[string]int{}
	cut := func(s *lossSite) bool { // a reset is an answer: nothing is in flight
		return !s.reset && !w.End.IsZero() && s.seen != 0 && w.End.UnixNano()-s.seen < int64(inFlight)
	}
	for i := range flows {
		if s := flows[i].site(); s != nil && !cut(s) {
			total[s.at] += s.lost
		}
	}
	done := map[string]*Loss{}
	for i := range flows {
		s := flows[i].site()
		if s == nil || cut(s) {
			continue
		}
		l := done[s.at]
		if l == nil {
			l = attribute(s, total[s.at], w, env)
			done[s.at] = l
		}
		fl := *l
		fl.Lost = s.lost
		flows[i].Loss = &fl
	}
}

func (f *Flow) site() *lossSite {
	if f.Stop == nil {
		return f.stall
	}
	return f.Stop.site
}

// attribute explains one place's loss of lost packets from the window.
func attribute(s *lossSite, lost int, w *CounterWindow, env *Env) *Loss {
	window := w.End.Sub(w.Start)
	l := &Loss{At: s.at, LostThere: lost, WindowMS: window.Milliseconds()}
	var unread []string
	for _, r := range s.scope {
		name := nsLabel(r, env)
		l.Netns = append(l.Netns, name)
		if !w.Read[NsKey(r.Node, r.Netns)] {
			unread = append(unread, name)
		}
	}
	causes := Causes(s.scope, lost, s.reset, w, env)
	if len(causes) > 0 {
		l.Cause = &causes[0]
		l.Also = causes[1:]
	}
	l.Summary = lossSummary(l, unread, window)
	return l
}

// nsLabel names a namespace as point labels do: "node/netns" off the
// primary node.
func nsLabel(r NsRef, env *Env) string {
	if r.Node != "" && r.Node != env.Primary() {
		return r.Node + "/" + r.Netns
	}
	return r.Netns
}

// lossSummary is the sentence of a loss: what it is consistent with, or
// that nothing moved, with the counts and the window.
func lossSummary(l *Loss, unread []string, window time.Duration) string {
	var b strings.Builder
	if !strings.HasPrefix(l.At, "refused") {
		b.WriteString("lost ")
	}
	fmt.Fprintf(&b, "%s: ", l.At)
	win := window.Round(time.Millisecond)
	switch {
	case l.Cause != nil:
		fmt.Fprintf(&b, "consistent with %s (%s) in %s; %d packet(s) lost there", l.Cause.Evidence, l.Cause.Code, win, l.LostThere)
		if len(l.Also) > 0 {
			ev := make([]string, 0, len(l.Also))
			for _, c := range l.Also {
				ev = append(ev, c.Evidence)
			}
			fmt.Fprintf(&b, "; also moved: %s", strings.Join(ev, ", "))
		}
	case len(unread) == len(l.Netns):
		fmt.Fprintf(&b, "%d packet(s) lost there; the counters of %s were not collected", l.LostThere, strings.Join(unread, ", "))
	default:
		fmt.Fprintf(&b, "%d packet(s) lost there; no drop counter of %s moved in %s", l.LostThere, strings.Join(l.Netns, ", "), win)
	}
	if l.Cause != nil || len(unread) < len(l.Netns) {
		if len(unread) > 0 {
			fmt.Fprintf(&b, " (counters of %s not collected)", strings.Join(unread, ", "))
		}
	}
	return b.String()
}

// Causes lists the counters that moved in the namespaces of scope and
// stand for a drop, best first: a count equal to lost first, then larger
// ones (other traffic counted too), then smaller ones, then by how
// specific the code is. reset says the flow was refused by a reset (a
// TCP reset counts as no-listener then). lost 0: not known (doctor's
// probe), matched by code only. It is pure.
func Causes(scope []NsRef, lost int, reset bool, w *CounterWindow, env *Env) []LossCause {
	if w == nil {
		return nil
	}
	var out []LossCause
	for _, r := range scope {
		ds := w.Deltas[NsKey(r.Node, r.Netns)]
		icmpUnreach := counted(ds, topology.CounterSNMP, "IcmpOutDestUnreachs")
		for _, d := range ds {
			if d.Delta <= 0 {
				continue
			}
			code, ev, ok := classify(d, r, reset, icmpUnreach, env)
			if !ok || (code == LossLinkDrop && d.Delta != int64(lost)) {
				// A link's drops count other traffic too (a VXLAN device
				// drops every frame it has no FDB entry for): named only
				// when they count exactly the packets lost.
				continue
			}
			out = append(out, LossCause{Code: code, Node: r.Node, Netns: r.Netns, Counted: d.Delta,
				Evidence: nsLabel(r, env) + " " + ev})
		}
	}
	fit := func(c LossCause) int {
		switch {
		case lost <= 0:
			return 0
		case c.Counted == int64(lost):
			return 0
		case c.Counted > int64(lost):
			return 1
		}
		return 2
	}
	slices.SortStableFunc(out, func(x, y LossCause) int {
		if c := cmp.Compare(fit(x), fit(y)); c != 0 {
			return c
		}
		if c := cmp.Compare(lossRank[x.Code], lossRank[y.Code]); c != 0 {
			return c
		}
		if fit(x) == 1 { // both larger: the closer count first
			return cmp.Compare(x.Counted, y.Counted)
		}
		return 0
	})
	return out
}

// counted is how much a counter of one kind moved in ds (0: not).
func counted(ds []topology.CounterDelta, kind topology.CounterKind, name string) int64 {
	for _, d := range ds {
		if d.Kind == kind && d.Counter == name {
			return d.Delta
		}
	}
	return 0
}

// snmpCodes are the SNMP counters that count a drop, with their code.
var snmpCodes = map[string]LossCode{
	"IpExtInNoRoutes":           LossNoRoute,
	"IpOutNoRoutes":             LossNoRoute,
	"IpInAddrErrors":            LossNoRoute, // no route in (EHOSTUNREACH: forwarding off), ip_error in net/ipv4/route.c
	"TcpExtIPReversePathFilter": LossRPFilter,
	"IpFragFails":               LossMTU,
	"UdpNoPorts":                LossNoListener,
	"UdpInCsumErrors":           LossChecksum,
	"TcpInCsumErrors":           LossChecksum,
	"TcpExtListenDrops":         LossNoListener,
}

// linkDrops are the link counters that count a drop.
var linkDrops = []string{"rx_dropped", "tx_dropped", "rx_errors", "tx_errors", "rx_length_errors", "rx_over_errors"}

// classify says which drop a moved counter stands for, with its
// evidence; ok false: the counter is not a drop (traffic, ICMP sent).
func classify(d topology.CounterDelta, r NsRef, reset bool, icmpUnreach int64, env *Env) (LossCode, string, bool) {
	switch d.Kind {
	case topology.CounterRule:
		target := ruleTarget(d.Text)
		if target != "DROP" && target != "REJECT" {
			return "", "", false
		}
		table, chain, num := ruleObject(d.Object)
		return LossRuleDrop, fmt.Sprintf("%s %s rule %s (%s) counted %+d", table, chain, num, ruleBody(d.Text, chain), d.Delta), true
	case topology.CounterPolicy:
		if d.Text != "DROP" {
			return "", "", false
		}
		return LossPolicyDrop, fmt.Sprintf("%s policy DROP counted %+d", d.Object, d.Delta), true
	case topology.CounterSNMP:
		if d.Counter == "TcpOutRsts" && reset {
			return LossNoListener, fmt.Sprintf("TcpOutRsts %+d (a segment to a port without a listener is answered with a reset)", d.Delta), true
		}
		if (d.Counter == "IcmpOutDestUnreachs") && ipvsNoDest(r, env) {
			return LossIPVSNoDest, fmt.Sprintf("IcmpOutDestUnreachs %+d where an IPVS service has no destination of weight > 0", d.Delta), true
		}
		code, ok := snmpCodes[d.Counter]
		if !ok {
			return "", "", false
		}
		ev := fmt.Sprintf("%s %+d", d.Counter, d.Delta)
		if (code == LossMTU || d.Counter == "UdpNoPorts") && icmpUnreach > 0 {
			ev += fmt.Sprintf(" (with IcmpOutDestUnreachs %+d)", icmpUnreach)
		}
		return code, ev, true
	case topology.CounterConntrack:
		if d.Counter != "insert_failed" && d.Counter != "drop" {
			return "", "", false
		}
		return LossConntrackInsert, fmt.Sprintf("conntrack %s %+d", d.Counter, d.Delta), true
	case topology.CounterLink:
		if !slices.Contains(linkDrops, d.Counter) {
			return "", "", false
		}
		ev := fmt.Sprintf("%s %s %+d", d.Object, d.Counter, d.Delta)
		if mine, peer, ok := mtuMismatch(r, d.Object, env); ok {
			return LossMTU, ev + fmt.Sprintf(" (MTU %d, its peer's %d)", mine, peer), true
		}
		if d.Counter == "rx_dropped" {
			// Also every frame no protocol takes (IPv6 where it is off,
			// unknown ethertypes: __netif_receive_skb_core before
			// rx_nohandler): too common to name.
			return "", "", false
		}
		return LossLinkDrop, ev, true
	}
	return "", "", false
}

// ruleTarget is a rule's -j target.
func ruleTarget(text string) string {
	f := strings.Fields(text)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "--jump" {
			return f[i+1]
		}
	}
	return ""
}

// ruleObject splits a rule delta's Object ("filter INPUT #3").
func ruleObject(obj string) (table, chain, num string) {
	f := strings.Fields(obj)
	if len(f) != 3 {
		return obj, "", ""
	}
	return f[0], f[1], strings.TrimPrefix(f[2], "#")
}

// ruleBody is the rule without its "-A CHAIN".
func ruleBody(text, chain string) string {
	return strings.TrimPrefix(text, "-A "+chain+" ")
}

// ipvsNoDest says a namespace has an IPVS service without a destination
// of weight > 0 (IPVS answers its packets with ICMP port unreachable and
// drops them, ip_vs_leave in net/netfilter/ipvs/ip_vs_core.c).
func ipvsNoDest(r NsRef, env *Env) bool {
	ns := envNetns(r, env)
	if ns == nil || ns.IPVS == nil {
		return false
	}
	for _, s := range ns.IPVS.Services {
		if !slices.ContainsFunc(s.Dests, func(d *topology.IPVSDest) bool { return d.Weight > 0 }) {
			return true
		}
	}
	return false
}

// mtuMismatch says a veth's MTU differs from its peer's: a frame the
// sender's MTU allows and the peer's not is dropped (__dev_forward_skb,
// counted in the sender's tx_dropped and the peer's rx_dropped).
func mtuMismatch(r NsRef, link string, env *Env) (mine, peer int, ok bool) {
	ns := envNetns(r, env)
	if ns == nil {
		return 0, 0, false
	}
	l := ns.Link(link)
	if l == nil || l.Peer == nil || l.Peer.Netns == "" {
		return 0, 0, false
	}
	n := env.Node(r.Node)
	if n == nil || n.Model == nil {
		return 0, 0, false
	}
	pns := n.Model.Lookup(l.Peer.Netns)
	if pns == nil {
		return 0, 0, false
	}
	pl := pns.Link(l.Peer.Ifname)
	if pl == nil || pl.MTU == l.MTU {
		return 0, 0, false
	}
	return l.MTU, pl.MTU, true
}

func envNetns(r NsRef, env *Env) *topology.Namespace {
	n := env.Node(r.Node)
	if n == nil || n.Model == nil {
		return nil
	}
	return n.Model.Lookup(r.Netns)
}

// stalled finds where an answered TCP flow that did not complete lost
// packets: segments sent again (the same direction, sequence number,
// length and flags) whose every copy was last seen at the same hop, with
// a hop the route expects after it. Only retransmitted segments count:
// one the capture's end cut off in flight is not a loss. nil: none.
func (a *Analysis) stalled(c *Conn, be *Backend) *lossSite {
	if c.Proto != ProtoTCP {
		return nil
	}
	type seg struct {
		reply    bool
		seq      uint32
		len      uint16
		flags    uint8
		point    int32
		dir      Dir
		copies   int
		mismatch bool
		seen     int64 // the first copy's last sighting
	}
	segs := map[[4]uint64]*seg{}
	var order []*seg
	for _, lp := range c.Packets {
		if len(lp.Frames) == 0 || (lp.Key.Len == 0 && lp.Key.Flags&(FlagSYN|FlagFIN) == 0) {
			continue // a bare ACK is not sent again
		}
		lf := &lp.Frames[len(lp.Frames)-1]
		k := [4]uint64{map[bool]uint64{true: 1}[lp.Reply], uint64(lp.Key.Seq), uint64(lp.Key.Len), uint64(lp.Key.Flags)}
		s := segs[k]
		if s == nil {
			s = &seg{reply: lp.Reply, seq: lp.Key.Seq, len: lp.Key.Len, flags: lp.Key.Flags, point: lf.Point, dir: lf.Dir, seen: lf.TS}
			segs[k] = s
			order = append(order, s)
		}
		s.copies++
		s.mismatch = s.mismatch || lf.Point != s.point || lf.Dir != s.dir
	}
	type place struct {
		point int32
		dir   Dir
		reply bool
	}
	lost := map[place]int{}
	seen := map[place]int64{}
	var best *place
	for _, s := range order {
		if s.copies < 2 || s.mismatch {
			continue
		}
		p := place{s.point, s.dir, s.reply}
		lost[p] += s.copies
		if seen[p] == 0 || s.seen < seen[p] {
			seen[p] = s.seen
		}
		if best == nil || lost[p] > lost[*best] {
			best = &p
		}
	}
	if best == nil {
		return nil
	}
	f := &Frame{Point: best.point, Dir: best.dir}
	nx, nd := a.nextPoint(f, best.reply, be)
	if nx < 0 {
		return nil
	}
	return a.site(best.point, best.dir, nx, nd, lost[*best], seen[*best], false)
}
