package diff

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// links compares links by name: added, removed, made anew (another
// ifindex), up or down, MTU, MAC, kind, master, veth peer, VXLAN
// attributes and addresses.
func (d *netnsDiff) links(a, b *topology.Namespace) {
	if !d.collected(AreaLinks, a.Links != nil, b.Links != nil) {
		return
	}
	d.cameOrWent = map[string]bool{}
	for _, lb := range b.Links {
		la := a.Link(lb.Name)
		if la == nil {
			d.cameOrWent[lb.Name] = true
			d.add(Change{Kind: LinkChanged, Op: Added, Object: lb.Name, Summary: "link " + lb.Name + " added (" + linkLine(lb) + ")"})
			continue
		}
		d.link(la, lb)
	}
	for _, la := range a.Links {
		if b.Link(la.Name) == nil {
			d.cameOrWent[la.Name] = true
			d.add(Change{Kind: LinkChanged, Op: Removed, Object: la.Name, Summary: "link " + la.Name + " removed (it was " + linkLine(la) + ")"})
		}
	}
}

// linkLine says what a link is, for one that came or went.
func linkLine(l *topology.Link) string {
	var b strings.Builder
	b.WriteString(orNone(l.Kind))
	fmt.Fprintf(&b, ", mtu %d, %s", l.MTU, upDown(l.Up))
	if l.Master != "" {
		b.WriteString(", master " + l.Master)
	}
	if p := peerName(l); p != "" {
		b.WriteString(", peer " + p)
	}
	for _, p := range l.Addrs {
		b.WriteString(", " + p.String())
	}
	return b.String()
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// detailed: the link's kind was shown (`ip -d addr`, or netlink), not
// inferred from the wiring nor unknown.
func detailed(l *topology.Link) bool { return l.Kind != "" && l.KindFrom == "" }

// peerName is a veth's resolved peer, "" when not resolved.
func peerName(l *topology.Link) string {
	if l.Peer == nil || l.Peer.Ifname == "" {
		return ""
	}
	if l.Peer.Netns == "" {
		return l.Peer.Ifname
	}
	return l.Peer.Netns + "/" + l.Peer.Ifname
}

func (d *netnsDiff) link(a, b *topology.Link) {
	obj := b.Name
	if a.Index != 0 && b.Index != 0 && a.Index != b.Index {
		d.add(Change{Kind: LinkChanged, Op: Changed, Object: obj, Field: "ifindex", Before: strconv.Itoa(a.Index), After: strconv.Itoa(b.Index),
			Summary: fmt.Sprintf("%s: made anew (ifindex %d -> %d)", obj, a.Index, b.Index)})
	}
	// Plain `ip addr` (no -d) shows no kind and no VXLAN attributes: on
	// that side they were not collected, never "(none)".
	da, db := detailed(a), detailed(b)
	if da && db {
		d.field(LinkChanged, obj, "kind", a.Kind, b.Kind)
		d.field(LinkChanged, obj, "vxlan", vxlanLine(a.VXLAN), vxlanLine(b.VXLAN))
	} else {
		d.skipOnce(AreaLinkDetails, notCollectedIn(da, db)+" (ip addr without -d)")
	}
	d.field(LinkChanged, obj, "state", upDown(a.Up), upDown(b.Up))
	d.field(LinkChanged, obj, "mtu", strconv.Itoa(a.MTU), strconv.Itoa(b.MTU))
	if a.MAC.IsValid() && b.MAC.IsValid() {
		d.field(LinkChanged, obj, "mac", a.MAC.String(), b.MAC.String())
	}
	d.field(LinkChanged, obj, "master", a.Master, b.Master)
	if pa, pb := peerName(a), peerName(b); pa != "" && pb != "" {
		d.field(LinkChanged, obj, "peer", pa, pb)
	}
	for _, p := range b.Addrs {
		if !slices.Contains(a.Addrs, p) {
			d.add(Change{Kind: LinkChanged, Op: Added, Object: obj, Field: "address", After: p.String(), Auto: autoAddr(p),
				Summary: fmt.Sprintf("%s: address %s added", obj, p)})
		}
	}
	for _, p := range a.Addrs {
		if !slices.Contains(b.Addrs, p) {
			d.add(Change{Kind: LinkChanged, Op: Removed, Object: obj, Field: "address", Before: p.String(), Auto: autoAddr(p),
				Summary: fmt.Sprintf("%s: address %s removed", obj, p)})
		}
	}
}

// autoAddr reports whether the kernel gives a link the address on its
// own: an IPv6 link-local one (addrconf, once the link is up with a
// carrier and its duplicate detection is done).
func autoAddr(p netip.Prefix) bool { return p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() }

func vxlanLine(v *topology.VXLANInfo) string {
	if v == nil {
		return ""
	}
	s := fmt.Sprintf("id %d dstport %d", v.ID, v.Port)
	if v.Local.IsValid() {
		s += " local " + v.Local.String()
	}
	if v.Group.IsValid() {
		s += " group " + v.Group.String()
	}
	if !v.Learning {
		s += " nolearning"
	}
	if v.Proxy {
		s += " proxy"
	}
	return s
}

// routes compares the routes by table and destination.
func (d *netnsDiff) routes(a, b *topology.Namespace) {
	if !d.collected(AreaRoutes, a.Routes != nil, b.Routes != nil) {
		return
	}
	key := func(r topology.Route) string {
		if r.Table != 0 {
			return r.DstString() + " table " + strconv.Itoa(r.Table)
		}
		return r.DstString()
	}
	pairs(d, RouteChanged, "route ", a.Routes, b.Routes, key, routeLine, func(topology.Route) bool { return false })
}

func routeLine(r topology.Route) string {
	var b strings.Builder
	b.WriteString(r.DstString())
	if r.Gateway.IsValid() {
		b.WriteString(" via " + r.Gateway.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	if r.Table != 0 {
		b.WriteString(" table " + strconv.Itoa(r.Table))
	}
	return b.String()
}

// pairs compares two lists of entries keyed by key and printed by line:
// entries whose line is on both sides are the same; of the rest, one on
// each side under one key changed, others were added or removed. learned
// says an entry the kernel makes and takes away on its own (Change.Auto).
func pairs[T any](d *netnsDiff, kind Kind, what string, a, b []T, key func(T) string, line func(T) string, learned func(T) bool) {
	type side struct{ a, b []T }
	var byKey ordered[side]
	count := map[string]int{}
	for _, x := range a {
		count[line(x)]++
	}
	for _, x := range b {
		if l := line(x); count[l] > 0 {
			count[l]--
			continue
		}
		byKey.at(key(x)).b = append(byKey.at(key(x)).b, x)
	}
	for _, x := range a {
		if l := line(x); count[l] > 0 {
			count[l]--
			byKey.at(key(x)).a = append(byKey.at(key(x)).a, x)
		}
	}
	for _, k := range byKey.keys {
		s := byKey.m[k]
		if len(s.a) == 1 && len(s.b) == 1 {
			x, y := s.a[0], s.b[0]
			d.add(Change{Kind: kind, Op: Changed, Object: k, Before: line(x), After: line(y), Auto: learned(x) && learned(y),
				Summary: what + line(x) + " -> " + line(y)})
			continue
		}
		for i, x := range s.a {
			if n := same(s.a, i, line); n > 0 {
				d.add(Change{Kind: kind, Op: Removed, Object: k, Before: line(x), Auto: learned(x), Summary: what + line(x) + " removed" + times(n)})
			}
		}
		for i, y := range s.b {
			if n := same(s.b, i, line); n > 0 {
				d.add(Change{Kind: kind, Op: Added, Object: k, After: line(y), Auto: learned(y), Summary: what + line(y) + " added" + times(n)})
			}
		}
	}
}

// same is how many entries of xs print as xs[i] does, 0 when one before
// it does (it was counted there): identical entries (the model keeps no
// VLAN of an FDB entry) are one change.
func same[T any](xs []T, i int, line func(T) string) int {
	l := line(xs[i])
	n := 0
	for j, x := range xs {
		if line(x) == l {
			if j < i {
				return 0
			}
			n++
		}
	}
	return n
}

func times(n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf(" (%d entries)", n)
}

// static reports whether a neighbour or FDB state is one an operator or a
// daemon set (permanent, noarp), not one the kernel learned from traffic.
func static(state string) bool {
	return strings.Contains(state, "permanent") || strings.Contains(state, "noarp")
}

// settled reports whether a learned state says the neighbour answers or
// answered (reachable, stale, delay, probe): moving among these is the
// kernel's own bookkeeping, not a change.
func settled(state string) bool {
	switch state {
	case "reachable", "stale", "delay", "probe":
		return true
	}
	return false
}

// neighbours compares the neighbour entries by device and address. A
// learned entry moving between reachable, stale, delay and probe is not a
// change; what the kernel learns or forgets on its own is marked so.
func (d *netnsDiff) neighbours(a, b *topology.Namespace) {
	if !d.collected(AreaNeigh, a.Neighbours != nil, b.Neighbours != nil) {
		return
	}
	norm := func(ns []topology.Neigh) []topology.Neigh {
		var out []topology.Neigh
		for _, n := range ns {
			if d.cameOrWent[n.Dev] {
				continue // the link's change says it
			}
			if settled(n.State) {
				n.State = "reachable"
			}
			out = append(out, n)
		}
		return out
	}
	pairs(d, NeighChanged, "neighbour ", norm(a.Neighbours), norm(b.Neighbours),
		func(n topology.Neigh) string { return n.IP.String() + " dev " + n.Dev },
		func(n topology.Neigh) string {
			s := n.IP.String() + " dev " + n.Dev
			if n.MAC.IsValid() {
				s += " lladdr " + n.MAC.String()
			}
			if settled(n.State) {
				return s + " (learned)"
			}
			return s + " " + n.State
		},
		// The kernel makes a multicast group's entry (noarp) when it
		// first sends to the group (an IGMP report).
		func(n topology.Neigh) bool { return !static(n.State) || n.IP.IsMulticast() })
}

// fdb compares the FDB entries by device, MAC and destination (with the
// links: without them a bundle's entries are not known).
func (d *netnsDiff) fdb(a, b *topology.Namespace) {
	// A bundle keeps the FDB entries of bridge ports and VXLAN devices
	// (as the live reader does), which it tells from the links.
	if !d.collected(AreaFDB, a.FDB != nil && a.Links != nil, b.FDB != nil && b.Links != nil) {
		return
	}
	key := func(f topology.FDB) string {
		s := f.MAC.String() + " dev " + f.Dev
		if f.Dst.IsValid() {
			s += " dst " + f.Dst.String()
		}
		return s
	}
	line := func(f topology.FDB) string {
		if static(f.State) {
			return key(f) + " " + f.State
		}
		return key(f) + " (learned)"
	}
	// Which entries a bundle keeps depends on its devices' kinds: a
	// device whose kind one side did not show (plain ip addr) is not
	// compared (link-details says so).
	unknown := func(dev string) bool {
		la, lb := a.Link(dev), b.Link(dev)
		return la != nil && lb != nil && (!detailed(la) || !detailed(lb))
	}
	onLink := func(fs []topology.FDB) []topology.FDB {
		return slices.DeleteFunc(slices.Clone(fs), func(f topology.FDB) bool { return d.cameOrWent[f.Dev] || unknown(f.Dev) }) // the link's change says it
	}
	pairs(d, FDBChanged, "fdb ", onLink(a.FDB), onLink(b.FDB), key, line, func(f topology.FDB) bool { return !static(f.State) })
}

// gauges are sysctls that count rather than configure.
var gauges = map[string]bool{"net.netfilter.nf_conntrack_count": true}

// sysctls compares the knobs read on both sides (a knob read on one side
// only, such as a link's that came or went, is not compared).
func (d *netnsDiff) sysctls(a, b *topology.Namespace) {
	if !d.collected(AreaSysctls, a.Sysctls != nil, b.Sysctls != nil) {
		return
	}
	for _, k := range sortedKeys(b.Sysctls) {
		va, ok := a.Sysctls[k]
		if vb := b.Sysctls[k]; ok && va != vb {
			d.add(Change{Kind: SysctlChanged, Op: Changed, Object: k, Before: va, After: vb, Auto: gauges[k],
				Summary: fmt.Sprintf("%s %s -> %s", k, va, vb)})
		}
	}
}

// sockets compares the listening sockets.
func (d *netnsDiff) sockets(a, b *topology.Namespace) {
	if !d.collected(AreaSockets, a.Sockets != nil, b.Sockets != nil) {
		return
	}
	line := func(s topology.Socket) string {
		return s.Proto + " " + netip.AddrPortFrom(s.Addr, uint16(s.Port)).String()
	}
	pairs(d, SocketChanged, "listener ", a.Sockets, b.Sockets, line, line, func(topology.Socket) bool { return false })
}
