package trace

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/meshtrace/meshtrace/topology"
)

// planVIP is Plan for an east-west flow (a path of `--vip --netns`): the
// calling task's leg on the VIP's network, the overlay's port of it, the
// load balancer's leg where another namespace owns the VIP (Docker 23+'s
// lb_ namespace; on 20.10 IPVS runs in the caller), then per backend the
// overlay port to a local task and its leg, or the overlay's VXLAN device
// and the host's underlay (ESP on an encrypted overlay) to a remote one,
// and on a node of env that runs it, its underlay, VXLAN device and task.
func planVIP(pl *planner, n0 *Node) (*CapturePlan, error) {
	p := n0.Path
	caller := n0.Model.Lookup(p.From)
	if caller == nil {
		return nil, fmt.Errorf("trace plan: node %s: no namespace %s", nodeName(n0), p.From)
	}
	leg := caller.RouteOut(p.VIP)
	if leg == nil {
		pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf("%s has no route to VIP %s: capturing nowhere else", p.From, p.VIP))
		pl.plan.Filter = pl.filter()
		return pl.plan, nil
	}
	prefix := []Step{{pl.point(n0, caller, leg.Name, "caller"), DirOut}}
	ovl := peerNS(n0.Model, leg)
	if ovl != nil {
		prefix = append(prefix, Step{pl.point(n0, ovl, leg.Peer.Ifname, "overlay-port"), DirIn})
	}
	if lb, lbLeg := vipOwner(n0.Model, p.VIP, caller); lb != nil {
		if lbLeg.Peer != nil && ovl != nil && lbLeg.Peer.Netns == ovl.Name {
			port := pl.point(n0, ovl, lbLeg.Peer.Ifname, "overlay-port")
			in := pl.point(n0, lb, lbLeg.Name, "lb")
			prefix = append(prefix, Step{port, DirOut}, Step{in, DirIn}, Step{in, DirOut}, Step{port, DirIn})
		}
	}
	host := n0.Model.Lookup("host")
	for _, b := range p.Backends {
		steps := slices.Clone(prefix)
		route := Route{Backend: b.IP.String(), Node: n0.Name}
		if b.Netns != nil {
			if task := n0.Model.Lookup(*b.Netns); task != nil {
				steps = append(steps, pl.taskSteps(n0, task, b.IP, ovl)...)
			}
			route.Steps = steps
			pl.plan.Routes = append(pl.plan.Routes, route)
			continue
		}
		if ovl != nil {
			if vx := vxlanOf(ovl); vx != nil {
				steps = append(steps, Step{pl.point(n0, ovl, vx.Name, "vxlan"), DirOut})
			}
		}
		if host != nil && b.VTEP.IsValid() {
			if ul := host.RouteOut(b.VTEP); ul != nil {
				steps = append(steps, Step{pl.point(n0, host, ul.Name, "uplink"), DirOut})
			}
		}
		route.Steps = steps
		if rn := pl.env.NodeByAddr(b.VTEP); rn != nil && rn != n0 {
			route.Node = rn.Name
			route.Steps = append(route.Steps, pl.remoteSteps(rn, b.IP)...)
		} else {
			pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf("backend %s is on another node (VTEP %s) that is not traced", b.IP, b.VTEP))
		}
		pl.plan.Routes = append(pl.plan.Routes, route)
	}
	pl.plan.Filter = pl.filter()
	return pl.plan, nil
}

// vipOwner is the namespace other than the caller that owns the VIP (the
// load balancer's), with its link.
func vipOwner(m *topology.Model, vip netip.Addr, caller *topology.Namespace) (*topology.Namespace, *topology.Link) {
	for _, ns := range m.Namespaces {
		if ns == caller || ns.Role == topology.RoleHost {
			continue
		}
		if l, ok := ns.Owns(vip); ok {
			return ns, l
		}
	}
	return nil, nil
}
