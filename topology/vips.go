package topology

import (
	"net/netip"
	"slices"
	"sort"
)

// ServiceVIP is a service's virtual IP that tasks call by the service's
// name (east-west), with the namespaces such a call can start from.
type ServiceVIP struct {
	VIP netip.Addr `json:"vip"`
	// Service is Docker's name for it, when the metadata says.
	Service string `json:"service,omitempty"`
	// Clients are the task namespaces with an interface in the VIP's
	// network that do not own it, tasks of other services first: where
	// a call to the VIP can start (FindPath's Query.Netns). Empty when no
	// task of this node is on that network.
	Clients []string `json:"clients,omitempty"`
}

// ServiceVIPs lists the node's service VIPs in address order: the
// addresses a mangle rule marks by destination (`-d VIP/32 -j MARK`, the
// rule dockerd writes per service VIP) and the VIPs Docker reports. The
// ingress network's VIPs are left out: they serve the routing mesh, not
// calls between services. They are known by Docker's ingress network
// (its id, its subnet), by the ingress sandbox owning them, or by being
// marked where published ports are marked (the sandbox's own rules).
func ServiceVIPs(m *Model) []ServiceVIP {
	if m == nil {
		return nil
	}
	var out []ServiceVIP
	for _, v := range vips(m) {
		out = append(out, ServiceVIP{VIP: v, Service: serviceForVIP(m, v), Clients: clientsOf(m, v)})
	}
	return out
}

func vips(m *Model) []netip.Addr {
	var ingressIDs []string
	var ingressNets []netip.Prefix
	if m.Docker != nil {
		for _, n := range m.Docker.Networks {
			if n.Ingress || n.Name == "ingress" {
				ingressIDs = append(ingressIDs, n.ID)
				if n.Subnet.IsValid() {
					ingressNets = append(ingressNets, n.Subnet)
				}
			}
		}
	}
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if !a.IsValid() || !a.Is4() || seen[a] || inAny(ingressNets, a) {
			return
		}
		if o := m.Owner(a); o != nil && o.Role == RoleIngressSandbox {
			return
		}
		seen[a] = true
		out = append(out, a)
	}
	for _, ns := range m.Namespaces {
		mangle := ns.Firewall.Table("mangle")
		if mangle == nil || ns.Role == RoleIngressSandbox || len(ns.MarkedPorts()) > 0 {
			continue
		}
		for _, c := range mangle.Chains {
			for _, r := range c.All() {
				if a, ok := r.MarksDst(); ok {
					add(a)
				}
			}
		}
	}
	if m.Docker != nil {
		for _, s := range m.Docker.Services {
			for id, v := range s.VIPs {
				if !slices.Contains(ingressIDs, id) {
					add(v.Addr())
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// MarksDst reports whether r is a MARK rule matching one destination
// address (`-d VIP/32 -j MARK`), and that address.
func (r *Rule) MarksDst() (netip.Addr, bool) {
	if r.Target != "MARK" || r.Dst == nil || r.Dst.Neg || !r.Dst.Net.IsValid() || !r.Dst.Net.IsSingleIP() {
		return netip.Addr{}, false
	}
	return r.Dst.Net.Addr(), true
}

// clientsOf are the task namespaces on the VIP's subnet (that do not own
// it), tasks of other services first.
func clientsOf(m *Model, vip netip.Addr) []string {
	svc := serviceForVIP(m, vip)
	var own, other []string
	for _, ns := range m.Namespaces {
		if ns.Role != RoleTask {
			continue
		}
		if _, owns := ns.Owns(vip); owns {
			continue
		}
		if l, _ := ns.connected(vip); l == nil {
			continue
		}
		if svc != "" && ns.Docker != nil && ns.Docker.Service == svc {
			own = append(own, ns.Name)
		} else {
			other = append(other, ns.Name)
		}
	}
	return slices.Concat(other, own)
}

// serviceForVIP is the name of the Docker service with that VIP, "" when
// none is known.
func serviceForVIP(m *Model, vip netip.Addr) string {
	if m.Docker == nil {
		return ""
	}
	for _, s := range m.Docker.Services {
		for _, v := range s.VIPs {
			if v.Addr() == vip {
				return s.Name
			}
		}
	}
	return ""
}
