package doctor

import (
	"fmt"
	"net/netip"

	"github.com/meshtrace/meshtrace/topology"
)

// staleNeighbours: the overlay driver programs a permanent neighbour entry
// (and an FDB entry) for every remote endpoint; one left with an old MAC
// (a task replaced while gossip was down, moby#52661) sends the traffic
// for that address to a MAC no endpoint has, and connections to it stall.
// A path to such a backend breaks at the same spot (no FDB entry for the
// MAC): one finding names the cause, stale-neigh, and the path's
// vxlan-no-fdb is left out for it.
func (c *checker) staleNeighbours() {
	const check = "stale neighbours"
	for _, ns := range c.m.Namespaces {
		if ns.Role == topology.RoleOverlay {
			c.need(check, "ip neigh", ns.Name, ns.Neighbours != nil)
			if c.m.Docker == nil || c.m.Docker.Networks == nil {
				// the overlay's FDB still tells some; Docker's endpoints
				// would tell the rest
				c.cov.skip(check+" against Docker's endpoints", "docker network inspect", "docker")
			}
		}
	}
	for _, s := range c.stale() {
		where := "no FDB entry: VXLAN does not know where to send it"
		if s.FDB != nil {
			where = fmt.Sprintf("the FDB sends it to %s", s.FDB.Dst)
		}
		if s.WantFDB != nil {
			where += fmt.Sprintf("; the endpoint's own MAC %s has an FDB entry (dst %s)", s.Want, s.WantFDB.Dst)
		}
		dev := orDefault(s.Neigh.Dev, "vxlan0")
		c.add(Finding{Code: "stale-neigh", Severity: Error, Netns: s.Netns,
			Summary: fmt.Sprintf("overlay %s has a permanent neighbour %s -> %s, but the endpoint Docker has there (%s) has MAC %s: traffic to %s goes to a MAC no endpoint has, and stalls",
				s.Netns, s.Neigh.IP, s.Neigh.MAC, s.Endpoint, s.Want, s.Neigh.IP),
			Evidence: fmt.Sprintf("%s dev %s lladdr %s PERMANENT; for %s: %s; Docker's overlay gives %s the MAC %s (02:42 and its address)", s.Neigh.IP, dev, s.Neigh.MAC, s.Neigh.MAC, where, s.Neigh.IP, s.Want),
			Confirm:  c.in(s.Netns, "ip neigh show nud permanent") + "; " + c.in(s.Netns, "bridge fdb show dev "+dev) + "; docker network inspect -v " + c.networkOf(s.Netns),
			Fix: fmt.Sprintf("%s (the overlay driver's entry), or make dockerd re-program its peers: docker service update --force SERVICE; if it comes back, check gossip (tcp/udp 7946) between the nodes",
				c.in(s.Netns, fmt.Sprintf("ip neigh replace %s lladdr %s dev %s nud permanent", s.Neigh.IP, s.Want, dev)))})
	}
}

// stale is topology.StaleNeighbours, once per check.
func (c *checker) stale() []topology.StaleNeigh {
	if !c.staleDone {
		c.staleDone = true
		c.staleN = topology.StaleNeighbours(c.m)
	}
	return c.staleN
}

// isStale reports whether ip's neighbour entry in the overlay netns is a
// stale one.
func (c *checker) isStale(netns string, ip netip.Addr) bool {
	for _, s := range c.stale() {
		if s.Netns == netns && s.Neigh.IP == ip {
			return true
		}
	}
	return false
}
