package doctor

import (
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// notSwarmNode: a host that holds nothing of a swarm node gets one note
// saying so, instead of checks of a mesh that is not there (its sysctls
// are its own business: forwarding off is normal on a plain host). It
// decides from evidence only (topology.Swarm): what was not collected
// never makes a host "not a swarm node".
func (c *checker) notSwarmNode() bool {
	member, ev := topology.Swarm(c.m)
	if member != topology.NotSwarmNode {
		return false
	}
	c.cov.ran("swarm membership")
	c.add(Finding{Code: "not-a-swarm-node", Severity: Info, Netns: "host",
		Summary:  "this host is not a swarm node: there is no routing mesh here to check",
		Evidence: strings.Join(ev, "; "),
		Confirm:  "docker info --format '{{.Swarm.LocalNodeState}}'; ip link show docker_gwbridge; ls /run/docker/netns",
		Fix:      "none, if it is not meant to be one; else join it (docker swarm join) and run doctor again"})
	return true
}
