package topology

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Classify decides every namespace's role from how it is wired and what it
// holds, whatever the input showed (kinds from `ip -d addr` or netlink, or
// none from plain `ip addr`: InferKinds reads them from the wiring first),
// never from its file name alone, and records in RoleEvidence the facts it
// decided on:
//
//   - host: the namespace read as the root ("host").
//   - overlay: a bridge with a VXLAN device (the VTEP) among its ports, and
//     veths to the endpoints.
//   - ingress-sandbox: owns the target of the host's DNAT rules. Without
//     them: owns the address Docker gives the ingress network's
//     ingress-sbox endpoint; else holds fwmark load-balancing services and
//     has legs on docker_gwbridge and an overlay; else is named
//     ingress_sbox and wired that way (the evidence says it is the name).
//   - lb: one leg, into the overlay whose network id its name (lb_<id>)
//     starts; or load-balancing services or VIP marks and no leg on
//     docker_gwbridge.
//   - task: legs into overlays (a veth whose peer is in an overlay, or an
//     address on an overlay's subnet), usually one on docker_gwbridge; or a
//     container Docker names.
//   - other: everything it is wired to was read, and none of it is an
//     overlay, docker_gwbridge or the ingress sandbox (a container on
//     docker0, a client namespace): known not to take part in the mesh.
//   - unknown: what would decide was not collected (no links read) or leads
//     out of what was read (a veth whose peer is in no namespace read, on
//     no subnet read). Unknown is never forced into another role; it differs
//     from other in that other is known to be outside the mesh.
func Classify(m *Model) {
	InferKinds(m)
	c := &classifier{m: m, host: m.Lookup("host"), sandbox: map[*Namespace]bool{}}
	c.gw, c.gwName = gwBridge(c.host)
	for _, ns := range m.Namespaces {
		ns.Role, ns.RoleEvidence = "", nil
		if ns == c.host {
			ns.Role = RoleHost
			ns.RoleEvidence = []string{"the node's root namespace"}
		}
	}
	for _, ns := range m.Namespaces {
		if ns.Role == "" && ns.Links == nil {
			c.unread(ns)
		}
	}
	for _, ns := range m.Namespaces {
		if ns.Role == "" {
			c.overlay(ns)
		}
	}
	c.sandboxes()
	for _, ns := range m.Namespaces {
		if ns.Role != "" {
			continue
		}
		if !c.lb(ns) && !c.task(ns) {
			c.rest(ns)
		}
	}
}

type classifier struct {
	m      *Model
	host   *Namespace
	gw     []netip.Prefix // docker_gwbridge's subnets
	gwName string
	// nets are the overlay subnets: the overlays' bridge addresses, and the
	// ingress sandbox's legs off docker_gwbridge (its overlay may not have
	// been read).
	nets    []overlayNet
	sandbox map[*Namespace]bool
}

type overlayNet struct {
	pfx netip.Prefix
	ns  *Namespace // the overlay (or the sandbox whose leg it is)
}

func (c *classifier) set(ns *Namespace, r Role, evidence ...string) {
	ns.Role, ns.RoleEvidence = r, evidence
}

// unread: no links were collected. Docker's word that it is a container's
// sandbox still makes it a task.
func (c *classifier) unread(ns *Namespace) {
	why := "its links were not collected (no ip addr): its wiring cannot be read"
	if d := ns.Docker; d != nil && d.Container != "" {
		c.set(ns, RoleTask, "Docker: the sandbox of container "+d.Container, why)
		return
	}
	c.set(ns, RoleUnknown, why)
}

// overlay: a bridge with a VTEP among its ports (a VXLAN device beside a
// bridge it is no port of is taken too: the kind was read, not inferred).
func (c *classifier) overlay(ns *Namespace) {
	for _, br := range ns.Links {
		if br.Kind != "bridge" {
			continue
		}
		var vteps, veths []string
		for _, l := range ns.Links {
			if l.Master != br.Name && !(l.Kind == "vxlan" && l.Master == "" && l.KindFrom == "") {
				continue
			}
			switch l.Kind {
			case "vxlan":
				v := l.Name
				if l.VXLAN != nil {
					v += fmt.Sprintf(" (VNI %d)", l.VXLAN.ID)
				}
				if l.KindFrom != "" {
					v += " (" + l.KindFrom + ")"
				}
				vteps = append(vteps, v)
			case "veth":
				veths = append(veths, l.Name)
			}
		}
		if len(vteps) == 0 {
			continue
		}
		ev := []string{fmt.Sprintf("bridge %s%s with the VTEP %s", br.Name, addrList(br), strings.Join(vteps, ", "))}
		if br.KindFrom != "" {
			ev[0] += "; " + br.Name + " is a bridge: " + br.KindFrom
		}
		if len(veths) > 0 {
			ev = append(ev, "veths to its endpoints: "+strings.Join(veths, ", "))
		}
		c.set(ns, RoleOverlay, ev...)
		for _, p := range br.Addrs {
			if p.Addr().Is4() {
				c.nets = append(c.nets, overlayNet{p.Masked(), ns})
			}
		}
		return
	}
}

func addrList(l *Link) string {
	var s []string
	for _, p := range l.Addrs {
		if p.Addr().Is4() {
			s = append(s, p.String())
		}
	}
	if len(s) == 0 {
		return ""
	}
	return " (" + strings.Join(s, " ") + ")"
}

// sandboxes finds the ingress sandbox: the owner of the host's DNAT
// targets, else by Docker's endpoint, its load balancing, or its name and
// wiring.
func (c *classifier) sandboxes() {
	// One line per owned target, naming every port DNATed to it.
	type owned struct {
		ns    *Namespace
		addr  netip.Addr
		link  string
		ports []string
	}
	var found []*owned
	for _, t := range dnatTargets(c.host) {
		for _, ns := range c.m.Namespaces {
			if ns.Role != "" {
				continue
			}
			l, ok := ns.Owns(t.addr)
			if !ok {
				continue
			}
			var o *owned
			for _, f := range found {
				if f.ns == ns && f.addr == t.addr {
					o = f
				}
			}
			if o == nil {
				o = &owned{ns: ns, addr: t.addr, link: l.Name}
				found = append(found, o)
			}
			o.ports = append(o.ports, fmt.Sprintf("%s (nat %s%s)", t.port, t.chain, lineRef(t.line)))
		}
	}
	for _, o := range found {
		c.sandbox[o.ns] = true
		o.ns.RoleEvidence = append(o.ns.RoleEvidence, fmt.Sprintf("owns %s (%s), the target of the host's DNAT for %s", o.addr, o.link, strings.Join(o.ports, ", ")))
	}
	for ns := range c.sandbox {
		ns.Role = RoleIngressSandbox
	}
	if len(c.sandbox) == 0 {
		c.sandboxByDocker()
	}
	if len(c.sandbox) == 0 {
		for _, ns := range c.m.Namespaces {
			if ns.Role == "" && hasLB(ns) && c.onGW(ns) != "" && c.overlayLeg(ns) != "" {
				c.sandbox[ns] = true
				c.set(ns, RoleIngressSandbox, "holds fwmark load-balancing services", c.onGW(ns), c.overlayLeg(ns))
			}
		}
	}
	if len(c.sandbox) == 0 {
		if ns := c.m.Lookup("ingress_sbox"); ns != nil && ns.Role == "" && c.onGW(ns) != "" && c.overlayLeg(ns) != "" {
			c.sandbox[ns] = true
			why := "no DNAT of the host leads to it"
			if c.host == nil || c.host.Firewall == nil {
				why = "the host's firewall was not collected"
			}
			c.set(ns, RoleIngressSandbox, "named ingress_sbox, Docker's name for the ingress sandbox, and wired like it: "+c.onGW(ns)+"; "+c.overlayLeg(ns), "not confirmed by a DNAT: "+why)
		}
	}
	for _, ns := range c.m.Namespaces {
		if !c.sandbox[ns] {
			continue
		}
		for _, l := range ns.Links {
			for _, p := range l.Addrs {
				if p.Addr().Is4() && !p.Addr().IsLoopback() && !inAny(c.gw, p.Addr()) && p.Bits() < 32 {
					c.nets = append(c.nets, overlayNet{p.Masked(), ns})
				}
			}
		}
	}
}

// sandboxByDocker: the namespace owning the ingress network's ingress-sbox
// endpoint address.
func (c *classifier) sandboxByDocker() {
	if c.m.Docker == nil {
		return
	}
	for _, n := range c.m.Docker.Networks {
		a, ok := n.ingressSandbox()
		if !ok {
			continue
		}
		for _, ns := range c.m.Namespaces {
			if ns.Role != "" {
				continue
			}
			if l, owns := ns.Owns(a); owns {
				c.sandbox[ns] = true
				c.set(ns, RoleIngressSandbox, fmt.Sprintf("owns %s (%s), the address Docker gives the %s endpoint on network %s", a, l.Name, IngressSandboxEndpoint, n.Name))
			}
		}
	}
}

func lineRef(n int) string {
	if n > 0 {
		return fmt.Sprintf(" line %d", n)
	}
	return ""
}

var lbName = regexp.MustCompile(`^lb_([0-9a-z]+)$`)

// lb: a network's load balancer.
func (c *classifier) lb(ns *Namespace) bool {
	legs := legsOf(ns)
	if s := lbName.FindStringSubmatch(ns.Name); s != nil && len(legs) == 1 && c.gwLeg(legs[0]) == "" {
		for _, ov := range c.m.Namespaces {
			o := overlayNetnsRe.FindStringSubmatch(ov.Name)
			if ov.Role != RoleOverlay || o == nil || !(strings.HasPrefix(o[1], s[1]) || strings.HasPrefix(s[1], o[1])) {
				continue
			}
			if into := c.legInto(legs[0], ov); into != "" {
				c.set(ns, RoleLB, fmt.Sprintf("named %s after the network whose overlay is %s, and its one leg %s", ns.Name, ov.Name, into))
				return true
			}
		}
	}
	if (hasLB(ns) || hasVIPMark(ns)) && c.onGW(ns) == "" && (ns.Docker == nil || ns.Docker.Container == "") {
		what := "holds load-balancing services"
		if !hasLB(ns) {
			what = "marks service VIPs (mangle MARK -d VIP)"
		}
		c.set(ns, RoleLB, what+" and has no leg on docker_gwbridge")
		return true
	}
	return false
}

// task: legs into overlays, or a container Docker names.
func (c *classifier) task(ns *Namespace) bool {
	var ev []string
	for _, l := range legsOf(ns) {
		if s := c.overlayLegOf(l); s != "" {
			ev = append(ev, s)
		} else if s := c.gwLeg(l); s != "" {
			ev = append(ev, s)
		}
	}
	overlay := false
	for _, e := range ev {
		overlay = overlay || strings.Contains(e, "overlay")
	}
	if d := ns.Docker; d != nil && d.Container != "" {
		ev = append(ev, "Docker: the sandbox of container "+d.Container)
		overlay = true
	}
	if !overlay {
		return false
	}
	c.set(ns, RoleTask, ev...)
	return true
}

// rest: other when every leg leads to something read, unknown otherwise.
func (c *classifier) rest(ns *Namespace) {
	var ev []string
	for _, l := range legsOf(ns) {
		p := l.Peer
		switch {
		case p != nil && p.Netns != "" && p.Ifname != "":
			s := fmt.Sprintf("%s's peer is %s/%s", l.Name, p.Netns, p.Ifname)
			if pn := c.m.Lookup(p.Netns); pn != nil {
				if pl := pn.Link(p.Ifname); pl != nil && pl.Master != "" {
					s += " on " + pl.Master
				}
			}
			ev = append(ev, s)
		case p != nil:
			c.set(ns, RoleUnknown, fmt.Sprintf("%s%s's other end (if%d%s) is in no namespace read: what it connects to is unknown", l.Name, addrList(l), p.Index, netnsidRef(p)))
			return
		default:
			ev = append(ev, l.Name+addrList(l)+" has no peer")
		}
	}
	if len(ev) == 0 {
		ev = []string{"no links but loopback"}
	}
	c.set(ns, RoleOther, append(ev, "none of its legs leads to an overlay, docker_gwbridge or the ingress sandbox")...)
}

func netnsidRef(p *Peer) string {
	switch {
	case p.Netns != "":
		return " in " + p.Netns
	case p.NetnsID >= 0:
		return fmt.Sprintf(" in netnsid %d", p.NetnsID)
	}
	return ""
}

// legsOf are a namespace's links but loopback.
func legsOf(ns *Namespace) []*Link {
	var out []*Link
	for _, l := range ns.Links {
		if l.Kind != "loopback" && l.Name != "lo" {
			out = append(out, l)
		}
	}
	return out
}

// overlayLeg describes the namespace's first leg into an overlay, "" when
// none.
func (c *classifier) overlayLeg(ns *Namespace) string { return firstLeg(ns, c.overlayLegOf) }

// onGW describes the namespace's leg on docker_gwbridge, "" when none.
func (c *classifier) onGW(ns *Namespace) string { return firstLeg(ns, c.gwLeg) }

func firstLeg(ns *Namespace, describe func(*Link) string) string {
	for _, l := range legsOf(ns) {
		if s := describe(l); s != "" {
			return s
		}
	}
	return ""
}

func (c *classifier) overlayLegOf(l *Link) string {
	if p := l.Peer; p != nil && p.Netns != "" {
		if pn := c.m.Lookup(p.Netns); pn != nil && pn.Role == RoleOverlay {
			return fmt.Sprintf("%s is a port of overlay %s (its peer %s/%s)", l.Name, pn.Name, pn.Name, p.Ifname)
		}
	}
	a, n := c.netOf(l, nil)
	switch {
	case n == nil:
		return ""
	case n.ns.Role == RoleOverlay:
		return fmt.Sprintf("%s (%s) is on overlay %s's subnet %s", l.Name, a, n.ns.Name, n.pfx)
	}
	return fmt.Sprintf("%s (%s) is on the overlay subnet %s of the ingress sandbox %s", l.Name, a, n.pfx, n.ns.Name)
}

// legInto describes l as a leg into the overlay ov, "" when it is not.
func (c *classifier) legInto(l *Link, ov *Namespace) string {
	if p := l.Peer; p != nil && p.Netns == ov.Name {
		return fmt.Sprintf("%s is a port of it (peer %s/%s)", l.Name, ov.Name, p.Ifname)
	}
	if a, n := c.netOf(l, ov); n != nil {
		return fmt.Sprintf("%s (%s) is on its subnet %s", l.Name, a, n.pfx)
	}
	return ""
}

// netOf finds an address of l on an overlay subnet (of ov only, unless
// nil), and that subnet.
func (c *classifier) netOf(l *Link, ov *Namespace) (netip.Prefix, *overlayNet) {
	for _, a := range l.Addrs {
		for i, n := range c.nets {
			if (ov == nil || n.ns == ov) && n.pfx.Contains(a.Addr()) {
				return a, &c.nets[i]
			}
		}
	}
	return netip.Prefix{}, nil
}

func (c *classifier) gwLeg(l *Link) string {
	if p := l.Peer; p != nil && p.Netns != "" && c.host != nil && p.Netns == c.host.Name {
		if pl := c.host.Link(p.Ifname); pl != nil && pl.Master != "" && pl.Master == c.gwName {
			return fmt.Sprintf("%s is on %s (its peer host/%s)", l.Name, c.gwName, p.Ifname)
		}
	}
	for _, a := range l.Addrs {
		if inAny(c.gw, a.Addr()) {
			return fmt.Sprintf("%s (%s) is on %s's subnet", l.Name, a, orName(c.gwName, "the host bridges"))
		}
	}
	return ""
}

func orName(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// dnatTarget is the destination of one of the host's DNAT rules.
type dnatTarget struct {
	addr  netip.Addr
	port  string // "tcp/8080", or "its traffic" without a port match
	chain string
	line  int
}

// dnatTargets are the destinations of the host's nat DNAT rules.
func dnatTargets(host *Namespace) []dnatTarget {
	var out []dnatTarget
	for _, c := range host.firewallTable("nat").chains() {
		for _, r := range c.All() {
			if r.Target != "DNAT" || r.NAT == nil || !r.NAT.Addr.IsValid() {
				continue
			}
			a := r.NAT.Addr
			port := "its traffic"
			if r.Proto != nil && r.DPort() != 0 {
				port = fmt.Sprintf("%s/%d", r.Proto.Value, r.DPort())
			}
			out = append(out, dnatTarget{a, port, c.Name, r.Line})
		}
	}
	return out
}

// gwBridge returns docker_gwbridge's subnets and name; a host without one
// (not a swarm node, or a hand-made mesh) has its bridges' subnets instead.
func gwBridge(host *Namespace) ([]netip.Prefix, string) {
	if host == nil {
		return nil, ""
	}
	subnets := func(l *Link) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range l.Addrs {
			if p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
		return out
	}
	if l := host.Link("docker_gwbridge"); l != nil {
		return subnets(l), l.Name
	}
	var out []netip.Prefix
	for _, l := range host.Links {
		if l.Kind == "bridge" {
			out = append(out, subnets(l)...)
		}
	}
	return out, ""
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func hasLB(ns *Namespace) bool {
	for _, s := range ns.LBServices() {
		if s.FWMark != 0 || s.Addr.IsValid() {
			return true
		}
	}
	return false
}

// hasVIPMark: mangle rules that mark a single destination address.
func hasVIPMark(ns *Namespace) bool {
	t := ns.Firewall.Table("mangle")
	if t == nil {
		return false
	}
	for _, c := range t.Chains {
		for _, r := range c.All() {
			if r.Target == "MARK" && r.Dst != nil && !r.Dst.Neg {
				return true
			}
		}
	}
	return false
}
