package topology

import "net/netip"

// Classify decides every namespace's role from what it holds and how it is
// wired, never from its file name alone (Docker 1.12 named the ingress
// sandbox like any container; lb_ namespaces are recognised by content):
//
//   - host: the namespace read as the root ("host").
//   - ingress-sandbox: owns the DNAT target of the host's published ports;
//     or, with no ports published, holds fwmark LB services and a leg on
//     the host's gwbridge subnet.
//   - overlay: holds a VXLAN device and a bridge.
//   - lb: holds LB services or VIP marks, has no leg on the gwbridge subnet.
//   - task: has a leg on an overlay (its veth's peer is in an overlay
//     namespace, or it shares a subnet with the sandbox's overlay leg) or is a
//     known container.
//   - other: anything else.
func Classify(m *Model) {
	host := m.Lookup("host")
	gw := gwSubnets(host)
	sandboxes := map[*Namespace]bool{}
	for _, a := range dnatTargets(host) {
		for _, ns := range m.Namespaces {
			if ns != host {
				if _, ok := ns.Owns(a); ok {
					sandboxes[ns] = true
				}
			}
		}
	}
	overlays := map[string]bool{}
	for _, ns := range m.Namespaces {
		if ns != host && hasKind(ns, "vxlan") && hasKind(ns, "bridge") {
			overlays[ns.Name] = true
		}
	}
	var ingressNets []netip.Prefix
	for _, ns := range m.Namespaces {
		switch {
		case ns == host:
			ns.Role = RoleHost
		case sandboxes[ns]:
			ns.Role = RoleIngressSandbox
		case overlays[ns.Name]:
			ns.Role = RoleOverlay
		case len(sandboxes) == 0 && hasLB(ns) && onSubnets(ns, gw):
			ns.Role = RoleIngressSandbox
			sandboxes[ns] = true
		default:
			continue
		}
	}
	for ns := range sandboxes {
		for _, l := range ns.Links {
			for _, p := range l.Addrs {
				if p.Addr().Is4() && !inAny(gw, p.Addr()) && !p.Addr().IsLoopback() {
					ingressNets = append(ingressNets, p.Masked())
				}
			}
		}
	}
	for _, ns := range m.Namespaces {
		if ns.Role == RoleHost || ns.Role == RoleIngressSandbox || ns.Role == RoleOverlay {
			continue
		}
		overlayLeg := false
		for _, l := range ns.Links {
			if l.Peer != nil && overlays[l.Peer.Netns] {
				overlayLeg = true
			}
			for _, p := range l.Addrs {
				if inAny(ingressNets, p.Addr()) {
					overlayLeg = true
				}
			}
		}
		switch {
		case (hasLB(ns) || hasVIPMark(ns)) && !onSubnets(ns, gw) && (ns.Docker == nil || ns.Docker.Container == ""):
			ns.Role = RoleLB
		case overlayLeg || (ns.Docker != nil && ns.Docker.Container != ""):
			ns.Role = RoleTask
		default:
			ns.Role = RoleOther
		}
	}
}

// dnatTargets are the destinations of the host's nat DNAT rules.
func dnatTargets(host *Namespace) []netip.Addr {
	if host == nil {
		return nil
	}
	var out []netip.Addr
	nat := host.Firewall.Table("nat")
	if nat == nil {
		return nil
	}
	for _, c := range nat.Chains {
		for _, r := range c.Rules {
			if r.Target == "DNAT" && r.NAT != nil && r.NAT.Addr.IsValid() {
				out = append(out, r.NAT.Addr)
			}
		}
	}
	return out
}

// gwSubnets are the host's bridge subnets (docker_gwbridge and friends):
// the subnets of host bridges that are not overlay-like.
func gwSubnets(host *Namespace) []netip.Prefix {
	if host == nil {
		return nil
	}
	var out []netip.Prefix
	for _, l := range host.Links {
		if l.Kind != "bridge" && l.Name != "docker_gwbridge" {
			continue
		}
		for _, p := range l.Addrs {
			if p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func onSubnets(ns *Namespace, ps []netip.Prefix) bool {
	for _, l := range ns.Links {
		for _, p := range l.Addrs {
			if inAny(ps, p.Addr()) {
				return true
			}
		}
	}
	return false
}

func hasKind(ns *Namespace, kind string) bool {
	for _, l := range ns.Links {
		if l.Kind == kind {
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
		for _, r := range c.Rules {
			if r.Target == "MARK" && r.Dst != nil && !r.Dst.Neg {
				return true
			}
		}
	}
	return false
}
