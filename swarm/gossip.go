package swarm

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/doctor"
)

// gossip compares, per swarm network, the peers each node's NetworkDB has
// (`docker network inspect`'s Peers) with the nodes that are on the network
// (those holding its overlay namespace, or listing it with peers): a node
// whose list lacks one no longer hears from it, and programs neither its
// endpoints nor its load balancing.
func (c *cluster) gossip() {
	// members: per network key, the nodes on it.
	members := map[string]map[*node]bool{}
	join := func(k string, n *node) {
		if members[k] == nil {
			members[k] = map[*node]bool{}
		}
		members[k][n] = true
	}
	type list struct {
		name  string
		peers []netip.Addr
	}
	lists := map[*node]map[string]list{}
	for _, n := range c.nodes {
		for k := range n.overlays {
			join(k, n)
		}
		if n.docker == nil {
			continue
		}
		for _, nw := range n.docker.networks {
			if nw.scope != "swarm" || nw.peers == nil || nw.id == "" {
				continue
			}
			k := netKeyOf(nw.id)
			join(k, n)
			if lists[n] == nil {
				lists[n] = map[string]list{}
			}
			lists[n][k] = list{name: nw.name, peers: nw.peers}
		}
	}
	for _, n := range c.nodes {
		switch {
		case !n.read:
			c.notChecked(n, CheckGossip, "node not collected")
			continue
		case len(lists[n]) == 0 && len(n.overlays) == 0:
			c.notApplicable(n, CheckGossip)
			continue
		case len(lists[n]) == 0:
			c.notChecked(n, CheckGossip, "its networks' peers were not collected (`docker network inspect --verbose`)")
			continue
		}
		c.ran(n, CheckGossip)
		for _, k := range sortedKeys(lists[n]) {
			l := lists[n][k]
			heard := map[*node]bool{}
			for _, a := range l.peers {
				if y := c.byAddr[a]; y != nil {
					heard[y] = true
				}
			}
			var lost []string
			for _, y := range c.nodes {
				if y != n && members[k][y] && !heard[y] {
					lost = append(lost, fmt.Sprintf("%s (%s)", y.name, y.addr))
				}
			}
			if len(lost) == 0 {
				continue
			}
			var have []string
			for _, a := range l.peers {
				have = append(have, a.String())
			}
			c.add(n, Finding{Code: CodeGossip, Severity: doctor.Error, Check: CheckGossip, Network: l.name, Netns: "host",
				Summary:  fmt.Sprintf("%s's gossip for network %s does not hear from %s", n.name, l.name, strings.Join(lost, ", ")),
				Evidence: fmt.Sprintf("its peers for %s: %s; those nodes are on the network", l.name, strings.Join(have, ", ")),
				Confirm:  fmt.Sprintf("docker network inspect --verbose %s --format '{{json .Peers}}' (on every node)", l.name),
				Fix:      "NetworkDB talks on TCP and UDP 7946 between the nodes' advertise addresses: open it both ways (and UDP 4789 for VXLAN), then check `docker node ls` from a manager"})
		}
	}
}
