package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// eastWest follows a service VIP from a namespace (a task): how the caller
// reaches the VIP (an interface in its network, else where the packet
// really goes), OUTPUT marks, the LB in the same namespace or in the
// namespace owning the VIP (lb_).
func eastWest(m *Model, q Query) (*Path, error) {
	from := m.Lookup(q.Netns)
	if from == nil {
		return nil, fmt.Errorf("netns %q not found", q.Netns)
	}
	p := &Path{Proto: q.Proto, Port: q.Port, VIP: q.VIP, From: from.Name, Hops: []Hop{}, Backends: []Backend{}}
	w := walker{m: m, p: p, from: from}
	w.eastWest(q)
	return p.settle(), nil
}

func (w *walker) eastWest(q Query) {
	from, p := w.from, w.p
	port := q.Port
	if port == 0 {
		port = 80
		p.Notes = append(p.Notes, "no --port given: evaluated for port 80; fwmark services do not depend on it")
	}
	pkt := Packet{Proto: q.Proto, Dst: q.VIP, DPort: port, SPort: clientPort}
	if !w.needLinks(from) {
		return
	}
	out, conn := from.connected(q.VIP)
	if out == nil {
		w.unreachable(q.VIP, pkt)
		return
	}
	reason := fmt.Sprintf("%s, on the VIP's network %s", conn, conn.Masked())
	if from.Routes == nil {
		reason += " (its ip route was not collected: the connected route the kernel makes of this address is assumed)"
	}
	p.Hops = append(p.Hops, Hop{Netns: from.Name, Kind: HopRoute, To: Endpoint{Addr: q.VIP}, Dev: out.Name, Reason: reason})
	pkt.OutIface, pkt.Src = out.Name, conn.Addr()
	if !w.needFirewall(from) {
		return
	}
	w.eval(from, "mangle", "OUTPUT", &pkt)
	d := w.eval(from, "nat", "OUTPUT", &pkt)
	if w.stopped {
		return
	}
	switch d.Verdict {
	case ActLB:
		w.balance(from, &pkt, emulatedBy(from, d.By.Rule))
		return
	case ActDNAT:
		w.natHop(from, d, &pkt)
	}
	if from.kernelService(&pkt) != nil {
		w.balance(from, &pkt, nil)
		return
	}
	if d := w.eval(from, "filter", "OUTPUT", &pkt); d.Verdict.Drops() {
		w.brk(&from.Name, BreakFilterDrop, fmt.Sprintf("filter OUTPUT %s %s", dropBy(d), &pkt))
		return
	}
	w.postrouting(from, &pkt)
	if w.stopped {
		return
	}
	next := w.owner(pkt.Dst, from, nil)
	if next == nil {
		if unread := w.unread(from); len(unread) > 0 {
			w.gap(from, fmt.Sprintf("no IPVS service for VIP %s in %s, and no namespace whose ip addr was read owns it; the ip addr of %s was not collected", q.VIP, from.Name, strings.Join(unread, ", ")))
			return
		}
		if why := w.ownerNotCollected(q.VIP); why != "" {
			w.gap(from, fmt.Sprintf("no IPVS service for VIP %s in %s, and %s", q.VIP, from.Name, why))
			return
		}
		w.brk(&from.Name, BreakNoService, fmt.Sprintf("no IPVS service for VIP %s in %s and no namespace on this node owns it", q.VIP, from.Name))
		return
	}
	if l, ok := next.Owns(pkt.Dst); ok {
		pkt.InIface = l.Name
	}
	crossed(&pkt)
	if next.Role == RoleTask && pkt.Mark == 0 && len(next.LBServices()) == 0 {
		// Not a VIP: the address of a task (--endpoint-mode dnsrr hands
		// these out). The call goes straight to it, unbalanced.
		p.Notes = append(p.Notes, fmt.Sprintf("%s is not a service VIP but the address of task %s: no load balancing (endpoint-mode dnsrr, or a task address used directly)", q.VIP, next.Name))
		d := &IPVSDest{Addr: q.VIP, Forward: "direct", Weight: 1}
		p.Backends = append(p.Backends, w.backend(from, d, pkt))
		p.Complete = true
		w.judgeBackends(p.Backends)
		return
	}
	ok, lb := w.enterLocal(next, &pkt)
	if !ok {
		return
	}
	w.balance(next, &pkt, lb)
}

// connected returns the link whose subnet holds a (a host route, /32, is
// an address, not a network), and that address of the link; nil when the
// namespace has no interface in a's network.
func (ns *Namespace) connected(a netip.Addr) (*Link, netip.Prefix) {
	var best *Link
	var bp netip.Prefix
	for _, l := range ns.Links {
		if l.Kind == "loopback" || l.Name == "lo" {
			continue
		}
		for _, p := range l.Addrs {
			if p.Contains(a) && p.Bits() < p.Addr().BitLen() && (best == nil || p.Bits() > bp.Bits()) {
				best, bp = l, p
			}
		}
	}
	return best, bp
}

// unreachable ends a VIP path whose caller has no interface in the VIP's
// network: the packet never meets the VIP. It says where it goes instead:
// the default route (Docker's, for a task: its leg on docker_gwbridge), and
// what the host does with it there (MASQUERADE out of the node).
func (w *walker) unreachable(vip netip.Addr, pkt Packet) {
	from := w.from
	var legs []string
	for _, l := range legsOf(from) {
		legs = append(legs, l.Name+addrList(l))
	}
	why := fmt.Sprintf("%s has no interface in the network of %s (its legs: %s), so the packet never meets the VIP", from.Name, vip, orName(strings.Join(legs, ", "), "none"))
	dev, how := w.defaultRoute(from)
	switch {
	case dev == nil:
		why += "; " + how
	default:
		why += fmt.Sprintf("; it takes the default route via %s (%s)", dev.Name, how)
		if gw, name := gwBridge(w.m.Lookup("host")); inAnyAddr(gw, dev.Addrs) {
			why += w.atHost(dev, name, pkt)
		}
	}
	w.brk(&from.Name, BreakVIPUnreachable, why)
}

// defaultRoute is the link the namespace's default route leaves by, and how
// that is known: its routing table, else (routes not collected) a task's
// leg on docker_gwbridge, where Docker puts a task's default route.
func (w *walker) defaultRoute(ns *Namespace) (*Link, string) {
	for _, r := range ns.Routes {
		if r.IsDefault() {
			if l := ns.Link(r.Dev); l != nil {
				return l, "its routing table: default via " + orName(addrString(r.Gateway), "?") + " dev " + r.Dev
			}
		}
	}
	if ns.Routes != nil {
		return nil, "and it has no default route: the call fails with network unreachable"
	}
	gw, name := gwBridge(w.m.Lookup("host"))
	for _, l := range legsOf(ns) {
		if inAnyAddr(gw, l.Addrs) {
			return l, fmt.Sprintf("its leg on %s, where Docker puts a task's default route; its ip route was not collected", orName(name, "the host bridge"))
		}
	}
	return nil, "where it goes instead cannot be told: its ip route was not collected and it has no leg on docker_gwbridge"
}

// atHost says what the host does with the packet arriving from dev's
// bridge: its nat POSTROUTING, typically Docker's MASQUERADE of the
// gwbridge subnet out of the node.
func (w *walker) atHost(dev *Link, bridge string, pkt Packet) string {
	host := w.m.Lookup("host")
	where := fmt.Sprintf(" to the host through %s", orName(bridge, "the host bridge"))
	if host == nil || host.Firewall == nil {
		return where + " (what the host does with it then is not known: its iptables-save was not collected)"
	}
	for _, p := range dev.Addrs {
		if p.Addr().Is4() {
			pkt.Src = p.Addr()
			break
		}
	}
	pkt.InIface, pkt.OutIface = bridge, ""
	if out := host.RouteOut(pkt.Dst); out != nil {
		pkt.OutIface = out.Name
	}
	d := Eval(host, "nat", "POSTROUTING", &pkt)
	if d.By == nil || !d.Verdict.SourceNAT() {
		return where + ", which routes it on without rewriting it"
	}
	rule := d.By.Rule.Text
	if d.By.Rule.Line > 0 {
		rule += fmt.Sprintf(", line %d", d.By.Rule.Line)
	}
	return fmt.Sprintf("%s, whose nat %s %ss it (%s) and sends it off the node", where, d.By.Chain, d.Verdict, rule)
}

func inAnyAddr(ps []netip.Prefix, addrs []netip.Prefix) bool {
	for _, a := range addrs {
		if inAny(ps, a.Addr()) {
			return true
		}
	}
	return false
}
