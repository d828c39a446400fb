package doctor

import (
	"fmt"
	"net/netip"

	"github.com/meshtrace/meshtrace/topology"
)

// subnetOverlap: an overlay or ingress subnet must not overlap what the
// host routes (a LAN, a VPC, a VPN's routes; Docker's default pool
// 10.0.0.0/8 is the usual culprit). A task on the overlay then reaches the
// overlapping part of the network inside the overlay, never through
// docker_gwbridge, and the node itself cannot tell the two apart.
func (c *checker) subnetOverlap() {
	const check = "subnet overlap"
	host := c.m.Lookup("host")
	if host == nil || !c.need(check, "ip addr", "host", host.Links != nil) {
		return
	}
	if host.Routes == nil {
		c.cov.skip(check+" with host routes", "ip route", "host")
	}
	subnets := topology.OverlaySubnets(c.m)
	for _, hp := range topology.HostPrefixes(host) {
		for _, s := range subnets {
			if !hp.Prefix.Overlaps(s.Prefix) {
				continue
			}
			name, label := s.Name, "network "+s.Name
			if name == "" {
				name = c.networkOf(s.Netns)
				label = "the overlay network of " + s.Netns
			}
			c.add(Finding{Code: "subnet-overlap", Severity: Error, Netns: "host",
				Summary: fmt.Sprintf("the host's %s overlaps the subnet %s of %s: its tasks send traffic for %s into the overlay instead of out of the node, and the node's own traffic for the overlap leaves the wrong way",
					hp.What, s.Prefix, label, overlap(hp.Prefix, s.Prefix)),
				Evidence: fmt.Sprintf("%s; %s", hp.What, s.From),
				Confirm:  fmt.Sprintf("ip route; docker network inspect %s --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}'", name),
				Fix:      fmt.Sprintf("move %s to a subnet nothing routes (docker network create --subnet …; the ingress network: docker network rm ingress, then docker network create --driver overlay --ingress --subnet …), or set a default address pool that avoids your networks (docker swarm init --default-addr-pool)", label)})
		}
	}
	c.cov.ran(check)
}

// overlap is the smaller of two overlapping prefixes: the addresses both
// claim.
func overlap(a, b netip.Prefix) netip.Prefix {
	if a.Bits() >= b.Bits() {
		return a
	}
	return b
}
