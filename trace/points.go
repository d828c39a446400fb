package trace

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/meshtrace/meshtrace/topology"
)

// Client is an outside client's namespace to capture in (the mesh's
// client netns): its interface becomes the first capture point.
type Client struct {
	Path   string // namespace file
	Ifname string
	Addr   netip.Addr
}

// CapturePlan is where to capture and what to keep.
type CapturePlan struct {
	Points []Point
	Routes []Route
	Filter FilterSpec
	Notes  []string
}

// planner accumulates points without duplicates.
type planner struct {
	env  *Env
	plan *CapturePlan
}

func (pl *planner) point(n *Node, ns *topology.Namespace, ifname, role string) int {
	for i, p := range pl.plan.Points {
		if p.Node == n.Name && p.Netns == ns.Name && p.Ifname == ifname {
			return i
		}
	}
	l := ns.Link(ifname)
	pl.plan.Points = append(pl.plan.Points, Point{Node: n.Name, Netns: ns.Name, Ifname: ifname, Role: role, Path: ns.Path,
		Terminal: l != nil && l.Master == ""})
	return len(pl.plan.Points) - 1
}

// Plan derives the capture points from the model and the path on every
// node: the client's interface, the host's uplink, docker_gwbridge and the
// veth to the sandbox, both sandbox legs, the overlay's ports, bridge and
// VXLAN device, the underlay for encapsulated traffic, and each backend's
// ingress leg (on other nodes too when their models are in env); plus the
// route the model expects a request to take to each backend.
func Plan(env *Env, client *Client) (*CapturePlan, error) {
	if env == nil || len(env.Nodes) == 0 {
		return nil, fmt.Errorf("trace plan: no node")
	}
	pl := &planner{env: env, plan: &CapturePlan{}}
	n0 := env.Nodes[0]
	host := n0.Model.Lookup("host")
	if host == nil {
		return nil, fmt.Errorf("trace plan: node %s: model has no host namespace", n0.Name)
	}
	if n0.Path != nil && n0.Path.VIP.IsValid() {
		return planVIP(pl, n0)
	}
	var prefix []Step
	if client != nil {
		pl.plan.Points = append(pl.plan.Points, Point{Netns: "client", Ifname: client.Ifname, Role: "client", Path: client.Path})
		prefix = append(prefix, Step{0, DirOut})
	}
	if up := uplink(host, n0.Addr); up != nil {
		prefix = append(prefix, Step{pl.point(n0, host, up.Name, "uplink"), DirIn})
	}
	sbox, sgw := sandboxOf(n0)
	if sbox == nil {
		pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf("node %s: no ingress sandbox found: capturing on the host only", n0.Name))
		pl.plan.Routes = append(pl.plan.Routes, Route{Node: n0.Name, Steps: prefix})
		pl.plan.Filter = pl.filter()
		return pl.plan, nil
	}
	if br := linkTo(host, sgw); br != nil {
		prefix = append(prefix, Step{pl.point(n0, host, br.Name, "gwbridge"), DirOut})
	}
	if hv := peerIn(sbox, sgw, host); hv != nil {
		prefix = append(prefix, Step{pl.point(n0, host, hv.Name, "host-veth"), DirOut})
	}
	if l, ok := sbox.Owns(sgw); ok {
		prefix = append(prefix, Step{pl.point(n0, sbox, l.Name, "sandbox-gw"), DirIn})
	}
	for _, b := range backendsOf(n0) {
		steps := slices.Clone(prefix)
		ing := sbox.RouteOut(b.addr)
		if ing == nil {
			pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf("node %s: %s has no route to backend %s", n0.Name, sbox.Name, b.addr))
			continue
		}
		steps = append(steps, Step{pl.point(n0, sbox, ing.Name, "sandbox-ingress"), DirOut})
		ovl := peerNS(n0.Model, ing)
		if ovl != nil {
			steps = append(steps, Step{pl.point(n0, ovl, ing.Peer.Ifname, "overlay-port"), DirIn})
			for _, l := range ovl.Links {
				if l.Kind == "bridge" {
					pl.point(n0, ovl, l.Name, "overlay-bridge")
				}
			}
		}
		route := Route{Backend: b.addr.String(), Node: n0.Name}
		if b.ns != nil {
			route.Steps = append(steps, pl.taskSteps(n0, b.ns, b.addr, ovl)...)
			pl.plan.Routes = append(pl.plan.Routes, route)
			continue
		}
		// Remote: out of the overlay's VXLAN device and the underlay,
		// into the other node's.
		if ovl != nil {
			if vx := vxlanOf(ovl); vx != nil {
				steps = append(steps, Step{pl.point(n0, ovl, vx.Name, "vxlan"), DirOut})
			}
		}
		vtep := b.vtep
		if vtep.IsValid() {
			if ul := host.RouteOut(vtep); ul != nil {
				steps = append(steps, Step{pl.point(n0, host, ul.Name, "uplink"), DirOut})
			}
		}
		route.Steps = steps
		rn := env.NodeByAddr(vtep)
		if rn == nil || rn == n0 {
			pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf("backend %s is on another node (VTEP %s) that is not traced", b.addr, b.vtep))
			pl.plan.Routes = append(pl.plan.Routes, route)
			continue
		}
		route.Node = rn.Name
		route.Steps = append(route.Steps, pl.remoteSteps(rn, b.addr)...)
		pl.plan.Routes = append(pl.plan.Routes, route)
	}
	pl.plan.Filter = pl.filter()
	return pl.plan, nil
}

// taskSteps are the last steps to a task: out of the overlay port toward
// it (or in from the VXLAN device on a remote node) and in on its leg.
func (pl *planner) taskSteps(n *Node, task *topology.Namespace, addr netip.Addr, ovl *topology.Namespace) []Step {
	var steps []Step
	leg, _ := task.Owns(addr)
	if leg == nil {
		return nil
	}
	if leg.Peer != nil && ovl != nil && leg.Peer.Netns == ovl.Name {
		steps = append(steps, Step{pl.point(n, ovl, leg.Peer.Ifname, "overlay-port"), DirOut})
	}
	return append(steps, Step{pl.point(n, task, leg.Name, "task-ingress"), DirIn})
}

// remoteSteps: in on the remote node's underlay, its VXLAN device, then
// the task.
func (pl *planner) remoteSteps(rn *Node, addr netip.Addr) []Step {
	var steps []Step
	host := rn.Model.Lookup("host")
	if host == nil {
		return nil
	}
	if ul := uplink(host, rn.Addr); ul != nil {
		steps = append(steps, Step{pl.point(rn, host, ul.Name, "uplink"), DirIn})
	}
	var task *topology.Namespace
	for _, ns := range rn.Model.Namespaces {
		if _, ok := ns.Owns(addr); ok && ns.Role == topology.RoleTask {
			task = ns
		}
	}
	if task == nil {
		pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf("node %s: no task owns backend %s", rn.Name, addr))
		return steps
	}
	leg, _ := task.Owns(addr)
	ovl := peerNS(rn.Model, leg)
	if ovl != nil {
		if vx := vxlanOf(ovl); vx != nil {
			steps = append(steps, Step{pl.point(rn, ovl, vx.Name, "vxlan"), DirIn})
		}
	}
	return append(steps, pl.taskSteps(rn, task, addr, ovl)...)
}

// filter keeps the traced protocol on every port of every node's path,
// and VXLAN when a backend is remote.
func (pl *planner) filter() FilterSpec {
	fs := FilterSpec{Proto: ProtoTCP}
	if pl.env.Proto == "udp" {
		fs.Proto = ProtoUDP
	}
	add := func(p int) {
		if p > 0 && p < 65536 && !slices.Contains(fs.Ports, uint16(p)) {
			fs.Ports = append(fs.Ports, uint16(p))
		}
	}
	add(pl.env.Port)
	for _, n := range pl.env.Nodes {
		if n.Path == nil {
			continue
		}
		hops := slices.Clone(n.Path.Hops)
		for _, b := range n.Path.Backends {
			add(b.Port)
			add(b.TargetPort)
			fs.VXLAN = fs.VXLAN || b.Remote
			hops = append(hops, b.Hops...)
		}
		for _, h := range hops {
			add(h.ToPort)
			add(int(h.To.Port))
		}
	}
	if len(pl.env.Nodes) > 1 {
		fs.VXLAN = true
	}
	fs.ESP = fs.VXLAN && pl.env.hasESP()
	return fs
}

// uplink is the host link that owns the node's address (clients and
// other nodes' VXLAN arrive on it): addr when given, else the node's
// address as topology.NodeAddress finds it.
func uplink(host *topology.Namespace, addr netip.Addr) *topology.Link {
	if addr.IsValid() {
		if l, ok := host.Owns(addr); ok {
			return l
		}
	}
	_, l := topology.NodeAddress(host)
	return l
}

// sandboxOf finds the ingress sandbox and its gwbridge address: the
// owner of the host's DNAT target, else the namespace classified as one.
func sandboxOf(n *Node) (*topology.Namespace, netip.Addr) {
	if n.Path != nil {
		for _, h := range n.Path.Hops {
			if h.Kind != topology.HopDNAT || h.Netns != "host" {
				continue
			}
			a := h.To.Addr
			if !a.IsValid() {
				continue
			}
			for _, ns := range n.Model.Namespaces {
				if _, ok := ns.Owns(a); ok && ns.Role != topology.RoleHost {
					return ns, a
				}
			}
		}
	}
	host := n.Model.Lookup("host")
	for _, ns := range n.Model.Namespaces {
		if ns.Role != topology.RoleIngressSandbox {
			continue
		}
		for _, l := range ns.Links {
			for _, p := range l.Addrs {
				if p.Addr().Is4() && host != nil && linkTo(host, p.Addr()) != nil {
					return ns, p.Addr()
				}
			}
		}
	}
	return nil, netip.Addr{}
}

// linkTo is the link of ns whose subnet holds a (docker_gwbridge for the
// sandbox's address).
func linkTo(ns *topology.Namespace, a netip.Addr) *topology.Link {
	for _, l := range ns.Links {
		for _, p := range l.Addrs {
			if p.Contains(a) && p.Bits() < 32 {
				return l
			}
		}
	}
	return nil
}

// peerIn finds, in namespace in, the veth peered with ns's link owning a.
func peerIn(ns *topology.Namespace, a netip.Addr, in *topology.Namespace) *topology.Link {
	l, ok := ns.Owns(a)
	if !ok || l.Peer == nil || l.Peer.Netns != in.Name {
		return nil
	}
	return in.Link(l.Peer.Ifname)
}

func peerNS(m *topology.Model, l *topology.Link) *topology.Namespace {
	if l == nil || l.Peer == nil || l.Peer.Netns == "" {
		return nil
	}
	return m.Lookup(l.Peer.Netns)
}

func vxlanOf(ns *topology.Namespace) *topology.Link {
	for _, l := range ns.Links {
		if l.Kind == "vxlan" {
			return l
		}
	}
	return nil
}

type backendRef struct {
	addr netip.Addr
	ns   *topology.Namespace // nil: remote
	vtep netip.Addr
}

// backendsOf lists the path's real servers; with no path, every task.
func backendsOf(n *Node) []backendRef {
	var out []backendRef
	if n.Path != nil {
		for _, b := range n.Path.Backends {
			r := backendRef{addr: b.IP, vtep: b.VTEP}
			if b.Netns != nil {
				r.ns = n.Model.Lookup(*b.Netns)
			}
			out = append(out, r)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, ns := range n.Model.Namespaces {
		if ns.Role != topology.RoleTask {
			continue
		}
		for _, l := range ns.Links {
			if l.Peer == nil || n.Model.Lookup(l.Peer.Netns) == nil || n.Model.Lookup(l.Peer.Netns).Role != topology.RoleOverlay {
				continue
			}
			for _, p := range l.Addrs {
				if p.Addr().Is4() {
					out = append(out, backendRef{addr: p.Addr(), ns: ns})
				}
			}
		}
	}
	return out
}

// NodeAddr is the address a client reaches the node on
// (topology.NodeAddress; invalid when there is none).
func NodeAddr(m *topology.Model) netip.Addr {
	a, _ := topology.NodeAddress(m.Lookup("host"))
	return a
}

// FilterSpec is what a capture socket keeps: IPv4 packets of one protocol
// to or from one of Ports, and, with VXLAN, UDP 4789 datagrams whose inner
// frame is such a packet. Ports is the union of every port the path uses
// (published, DNAT/IPVS targets, REDIRECT target), since NAT changes them
// between hops.
type FilterSpec struct {
	Proto uint8
	Ports []uint16
	VXLAN bool
	// ESP keeps ESP packets too (IP protocol 50: VXLAN of an encrypted
	// overlay on the underlay), when a node's host has ESP SAs (esp.go).
	ESP bool
}
