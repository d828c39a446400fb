package topology

import (
	"fmt"
	"net/netip"
)

// OverlaySubnet is the subnet of an overlay (or the ingress) network, and
// what says so.
type OverlaySubnet struct {
	Prefix netip.Prefix
	// Name is Docker's name of the network, "" when not known; Netns
	// the namespace the subnet was read in ("" for Docker's word).
	Name, Netns string
	From        string
}

// OverlaySubnets are the node's overlay and ingress subnets: Docker's
// IPAM subnets of its overlay networks, and what the namespaces hold (an
// overlay's bridge address, the ingress sandbox's leg off
// docker_gwbridge), each prefix once, Docker's word first.
func OverlaySubnets(m *Model) []OverlaySubnet {
	seen := map[netip.Prefix]bool{}
	var out []OverlaySubnet
	add := func(p netip.Prefix, name, netns, from string) {
		p = p.Masked()
		if !p.IsValid() || !p.Addr().Is4() || p.Bits() == 0 || seen[p] {
			return
		}
		seen[p] = true
		out = append(out, OverlaySubnet{p, name, netns, from})
	}
	if d := m.Docker; d != nil {
		for _, n := range d.Networks {
			if n.Driver == "overlay" || n.Ingress {
				add(n.Subnet, n.Name, "", fmt.Sprintf("Docker: network %s's subnet", n.Name))
			}
		}
	}
	gw, _ := gwBridge(m.Lookup("host"))
	for _, ns := range m.Namespaces {
		name := ""
		if ns.Docker != nil && ns.Docker.Network != "" {
			name = ns.Docker.Network
		}
		switch ns.Role {
		case RoleOverlay:
			for _, l := range ns.Links {
				if l.Kind != "bridge" {
					continue
				}
				for _, p := range l.Addrs {
					add(p, name, ns.Name, fmt.Sprintf("overlay %s's bridge %s has %s", ns.Name, l.Name, p))
				}
			}
		case RoleIngressSandbox:
			for _, l := range legsOf(ns) {
				for _, p := range l.Addrs {
					if p.Bits() < 32 && !inAny(gw, p.Addr()) {
						add(p, name, ns.Name, fmt.Sprintf("the ingress sandbox %s's leg %s has %s", ns.Name, l.Name, p))
					}
				}
			}
		}
	}
	return out
}

// HostPrefix is a destination the host routes (a route, or a link's own
// prefix, which makes one), and what it is.
type HostPrefix struct {
	Prefix netip.Prefix
	What   string
}

// HostPrefixes are the host's routed prefixes but the default route: its
// main table's routes, where they were collected, and its links' own
// prefixes (the connected routes; the uplink's among them), each once.
func HostPrefixes(host *Namespace) []HostPrefix {
	seen := map[netip.Prefix]bool{}
	var out []HostPrefix
	for _, l := range host.Links {
		if l.Kind == "loopback" || l.Name == "lo" {
			continue
		}
		for _, p := range l.Addrs {
			if !p.Addr().Is4() || p.Bits() >= 32 || seen[p.Masked()] {
				continue
			}
			seen[p.Masked()] = true
			out = append(out, HostPrefix{p.Masked(), fmt.Sprintf("%s's own prefix (%s)", l.Name, p)})
		}
	}
	for _, r := range host.Routes {
		if r.IsDefault() || !r.Dst.IsValid() || !r.Dst.Addr().Is4() || (r.Table != 0 && r.Table != 254) || seen[r.Dst] {
			continue
		}
		seen[r.Dst] = true
		out = append(out, HostPrefix{r.Dst, "route " + r.String()})
	}
	return out
}
