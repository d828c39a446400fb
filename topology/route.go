package topology

import (
	"fmt"
	"net/netip"
)

// RouteChoice is how a namespace routes a packet it sends to an address:
// the route the kernel takes (longest prefix of the main table), the device
// it leaves by and the source address it picks.
type RouteChoice struct {
	// Route is the route taken; from the links' own prefixes (Dev and
	// Dst only) when the routes were not collected.
	Route Route
	Dev   *Link
	Src   netip.Addr
	// SrcFrom says how the source was picked: the route's src attribute,
	// or the device's address the kernel selects (inet_select_addr).
	SrcFrom string
}

// String prints the choice as `ip route get` would: "192.0.2.11 dev eth0
// src 192.0.2.10" (the route's destination in place of the address).
func (c RouteChoice) String() string {
	r := c.Route
	r.Src = c.Src
	return r.String()
}

// String prints the route as `ip route` does: "10.0.0.0/16 via 192.0.2.1
// dev eth0 src 192.0.2.10".
func (r Route) String() string {
	s := r.DstString()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	return s
}

// RouteLookup routes dst out of ns as the kernel does for a packet ns
// sends: the main table's route with the longest prefix holding dst (the
// first of equal ones), else, when the routes were not collected, the
// link whose own prefix holds it (the connected route the kernel makes of
// an address). The source is the route's src attribute, else the primary
// address of the device on the same subnet as the gateway (or dst), else
// the device's first primary address of global scope (inet_select_addr in
// net/ipv4/devinet.c). ok is false when no route holds dst, or the links
// were not collected.
func (ns *Namespace) RouteLookup(dst netip.Addr) (c RouteChoice, ok bool) {
	if ns == nil || ns.Links == nil {
		return c, false
	}
	best := -1
	if ns.Routes != nil {
		for i, r := range ns.Routes {
			if (r.Table != 0 && r.Table != 254) || !r.Dst.IsValid() || !r.Dst.Contains(dst) {
				continue
			}
			if best < 0 || r.Dst.Bits() > ns.Routes[best].Dst.Bits() {
				best = i
			}
		}
		if best < 0 {
			return c, false
		}
		c.Route = ns.Routes[best]
		c.Dev = ns.Link(c.Route.Dev)
	} else {
		l, p := ns.connected(dst)
		if l == nil {
			return c, false
		}
		c.Route, c.Dev = Route{Dst: p.Masked(), Dev: l.Name}, l
	}
	switch {
	case c.Route.Src.IsValid():
		c.Src, c.SrcFrom = c.Route.Src, "the route's src attribute"
	case c.Dev != nil:
		to := dst
		if c.Route.Gateway.IsValid() {
			to = c.Route.Gateway
		}
		c.Src, c.SrcFrom = selectAddr(c.Dev, to)
	}
	return c, true
}

// selectAddr is the kernel's choice of a source address on l for a
// packet to (or via) to: the first primary IPv4 address whose subnet holds
// to, else the first primary one that is not a loopback address.
func selectAddr(l *Link, to netip.Addr) (netip.Addr, string) {
	var first netip.Addr
	for i, p := range l.Addrs {
		a := p.Addr()
		if !a.Is4() || a.IsLoopback() || secondary(l.Addrs[:i], p) {
			continue
		}
		if p.Contains(to) {
			return a, fmt.Sprintf("%s's address on %s, the subnet of %s", l.Name, p.Masked(), to)
		}
		if !first.IsValid() {
			first = a
		}
	}
	if first.IsValid() {
		return first, fmt.Sprintf("%s's first primary address (none of its subnets holds %s)", l.Name, to)
	}
	return netip.Addr{}, ""
}

// secondary reports whether p is a secondary address given the link's
// addresses before it: one of them has the same prefix length and subnet
// (the kernel makes such an address secondary to the first).
func secondary(before []netip.Prefix, p netip.Prefix) bool {
	for _, q := range before {
		if q.Addr().Is4() && q.Bits() == p.Bits() && q.Masked() == p.Masked() {
			return true
		}
	}
	return false
}
