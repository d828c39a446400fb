package topology

import (
	"net/netip"
	"strings"
)

// DockerBridgesSet is the ipset Docker 28.0.0's bridge driver fills with
// the subnet of every Docker bridge network that is not --internal, and
// matches in filter FORWARD (-m set --match-set docker-ext-bridges-v4 dst);
// 28.0.1 stopped using it (moby libnetwork/drivers/bridge
// setup_ip_tables_linux.go: ipsetExtBridges4, deleteLegacyTopLevelRules).
const DockerBridgesSet = "docker-ext-bridges-v4"

// dockerSet evaluates -m set for Docker's own set, whose members the
// model knows without reading the set: the subnets of the namespace's
// Docker bridges (docker0, docker_gwbridge, br-*). Any other set's members
// are not read: the match is not understood (assumed not to match, with a
// note), as before.
func dockerSet(ns *Namespace, m *Match, pkt *Packet) matchResult {
	if len(m.Opts) != 1 || m.Opts[0].Name != "match-set" || len(m.Opts[0].Args) != 2 || m.Opts[0].Args[0] != DockerBridgesSet {
		return notUnderstood
	}
	o := m.Opts[0]
	var a netip.Addr
	switch o.Args[1] {
	case "dst":
		a = pkt.Dst
	case "src":
		a = pkt.Src
	default:
		return notUnderstood
	}
	in := false
	for _, p := range dockerBridgeSubnets(ns) {
		in = in || p.Contains(a)
	}
	if in == o.Neg {
		return noMatch
	}
	return match
}

// dockerBridgeSubnets are the IPv4 subnets of ns's Docker bridges.
func dockerBridgeSubnets(ns *Namespace) []netip.Prefix {
	var out []netip.Prefix
	for _, l := range ns.Links {
		if l.Name != "docker0" && l.Name != "docker_gwbridge" && !strings.HasPrefix(l.Name, "br-") {
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
