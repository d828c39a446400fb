package swarm

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

// published checks that every node publishes the swarm's published ports
// (the routing mesh: every node answers on every one): the host DNATs it,
// the ingress sandbox marks it. The ports are the ingress-mode ports the
// managers' services publish; without any service's metadata, every port
// some node DNATs.
func (c *cluster) published() {
	want := map[topology.ProtoPort]string{} // port -> service
	fromDocker := false
	for _, name := range sortedKeys(c.services) {
		for _, p := range c.services[name].ports {
			fromDocker = true
			if ingressMode(p) && p.Published != 0 {
				want[topology.ProtoPort{Proto: p.Proto, Port: p.Published}] = name
			}
		}
	}
	dnats := map[*node]map[topology.ProtoPort]bool{}
	for _, n := range c.nodes {
		if n.host != nil && n.host.nat {
			dnats[n] = n.host.dnats
		}
	}
	if !fromDocker {
		for _, ports := range dnats {
			for p := range ports {
				want[p] = ""
			}
		}
	}
	ports := make([]topology.ProtoPort, 0, len(want))
	for p := range want {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].Port != ports[j].Port {
			return ports[i].Port < ports[j].Port
		}
		return ports[i].Proto < ports[j].Proto
	})
	for _, n := range c.nodes {
		if !n.read {
			c.notChecked(n, CheckPublished, "node not collected")
			continue
		}
		have, ok := dnats[n]
		if !ok {
			c.notChecked(n, CheckPublished, "host: its iptables nat table was not collected")
			continue
		}
		if len(ports) == 0 {
			c.notApplicable(n, CheckPublished)
			continue
		}
		c.ran(n, CheckPublished)
		var marked map[topology.ProtoPort]bool
		if n.sandbox != nil && n.sandbox.mangle {
			marked = n.sandbox.marked
		} else {
			name := "the ingress sandbox"
			if n.sandbox != nil {
				name = n.sandbox.name
			}
			c.notChecked(n, CheckPublished, "%s's mangle table was not read: whether it marks the published ports is not checked", name)
		}
		bySvc := map[string][]string{}
		var order []string
		for _, p := range ports {
			var gone []string
			if !have[p] {
				gone = append(gone, "the host does not DNAT it")
			}
			if marked != nil && !marked[p] {
				gone = append(gone, fmt.Sprintf("%s does not mark it", n.sandbox.name))
			}
			if len(gone) == 0 {
				continue
			}
			svc := want[p]
			if _, ok := bySvc[svc]; !ok {
				order = append(order, svc)
			}
			bySvc[svc] = append(bySvc[svc], fmt.Sprintf("%s/%d: %s", p.Proto, p.Port, strings.Join(gone, ", ")))
		}
		for _, svc := range order {
			whose := "every node publishes"
			if svc != "" {
				whose = "service " + svc + " publishes"
			} else {
				whose = "other nodes publish"
			}
			c.add(n, Finding{Code: CodePublished, Severity: doctor.Error, Check: CheckPublished, Service: svc, Netns: "host",
				Summary:  fmt.Sprintf("%s does not publish what %s: requests to it there are refused", n.name, whose),
				Evidence: examples(bySvc[svc], 5),
				Confirm:  "iptables -t nat -S DOCKER-INGRESS; nsenter --net=/run/docker/netns/ingress_sbox iptables -t mangle -S PREROUTING",
				Fix:      "dockerd on this node has not programmed the ingress rules: `docker service update --force SERVICE`, else restart dockerd on the node"})
		}
		if fromDocker {
			var extra []string
			for p := range have {
				if _, ok := want[p]; !ok {
					extra = append(extra, fmt.Sprintf("%s/%d", p.Proto, p.Port))
				}
			}
			sort.Strings(extra)
			if len(extra) > 0 {
				c.add(n, Finding{Code: CodePublished, Severity: doctor.Warning, Check: CheckPublished, Netns: "host",
					Summary:  fmt.Sprintf("%s still DNATs port(s) no service publishes in ingress mode", n.name),
					Evidence: "DOCKER-INGRESS DNATs " + examples(extra, 10),
					Confirm:  "iptables -t nat -S DOCKER-INGRESS; docker service ls",
					Fix:      "a stale rule of a removed service: restart dockerd on the node to rebuild DOCKER-INGRESS"})
			}
		}
	}
}

// hostDNATs are the ports the host's nat table DNATs to the ingress
// sandbox: its DOCKER-INGRESS rules (any chain where there is none).
func hostDNATs(nat *topology.Table) map[topology.ProtoPort]bool {
	out := map[topology.ProtoPort]bool{}
	chains := nat.Chains
	if ch := nat.Chain("DOCKER-INGRESS"); ch != nil {
		chains = []*topology.Chain{ch}
	}
	for _, ch := range chains {
		for _, r := range ch.All() {
			if r.Target == "DNAT" && r.Proto != nil && r.DPort() != 0 {
				out[topology.ProtoPort{Proto: r.Proto.Value, Port: r.DPort()}] = true
			}
		}
	}
	return out
}
