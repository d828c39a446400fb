package swarm

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

// fdb compares, on every node and overlay, the neighbour and FDB entries of
// its VXLAN device with where each remote endpoint is: every endpoint
// another node has on the network (a task, its ingress sandbox, its load
// balancer), read from that node's own namespaces, must have a neighbour
// entry with its MAC and an FDB entry sending that MAC to that node. A
// neighbour entry for an address no endpoint of the node it points at has
// is stale.
func (c *cluster) fdb() {
	c.eachNode(func(c *cluster, n *node) {
		if !n.read {
			c.notChecked(n, CheckFDB, "node not collected")
			return
		}
		if len(n.overlays) == 0 {
			c.notApplicable(n, CheckFDB)
			return
		}
		for _, k := range sortedKeys(n.overlays) {
			c.overlayFDB(n, k, n.overlays[k])
		}
	})
}

// fdbProblems gathers one overlay's problems by service.
type fdbProblems struct {
	order []string
	by    map[string][]string
	worst doctor.Severity
}

func (p *fdbProblems) add(svc, what string, sev doctor.Severity) {
	if p.by == nil {
		p.by = map[string][]string{}
	}
	if _, ok := p.by[svc]; !ok {
		p.order = append(p.order, svc)
	}
	p.by[svc] = append(p.by[svc], what)
	if p.worst == "" || rank(sev) < rank(p.worst) {
		p.worst = sev
	}
}

func (c *cluster) overlayFDB(n *node, k string, ov *overlayDigest) {
	var missing []string
	if ov.neigh == nil {
		missing = append(missing, "ip neigh")
	}
	if ov.fdb == nil {
		missing = append(missing, "bridge fdb")
	}
	if len(missing) > 0 {
		c.notChecked(n, CheckFDB, "%s: its %s not collected", ov.name, strings.Join(missing, " and "))
		return
	}
	c.ran(n, CheckFDB)
	neigh := make(map[netip.Addr]*neighEntry, len(ov.neigh))
	for i := range ov.neigh {
		e := &ov.neigh[i]
		if prev := neigh[e.IP]; prev == nil || !prev.vx && e.vx {
			neigh[e.IP] = e
		}
	}
	fdb := make(map[topology.MAC]*fdbEntry, len(ov.fdb))
	for i := range ov.fdb {
		f := &ov.fdb[i]
		if fdb[f.MAC] == nil {
			fdb[f.MAC] = f
		}
	}
	var stale, wrong fdbProblems
	for _, p := range c.endpoints[k] {
		y, e := p.n, p.e
		if y == n {
			continue
		}
		ne := neigh[p.ip]
		problem := ""
		switch {
		case ne == nil:
			problem = "no neighbour entry"
		case e.mac.IsValid() && ne.MAC != e.mac:
			problem = fmt.Sprintf("neighbour lladdr %s, its MAC is %s", ne.MAC, e.mac)
		default:
			f := fdb[ne.MAC]
			switch {
			case f == nil:
				problem = fmt.Sprintf("no FDB entry with a dst for %s: VXLAN does not know which node it is on", ne.MAC)
			case !y.addrs[f.Dst]:
				problem = fmt.Sprintf("FDB sends %s to %s%s", ne.MAC, f.Dst, c.nodeName(f.Dst))
			}
		}
		if problem != "" {
			wrong.add(e.svc, fmt.Sprintf("%s (%s on %s): %s", p.ip, e.label, y.name, problem), doctor.Error)
		}
	}
	for i := range ov.neigh {
		e := &ov.neigh[i]
		if neigh[e.IP] != e || !e.vx {
			continue
		}
		if _, known := c.endpointAt[k][e.IP]; known {
			continue
		}
		f := fdb[e.MAC]
		if f == nil {
			continue
		}
		y := c.byAddr[f.Dst]
		if y == nil || y == n || y.overlays[k] == nil {
			continue // a node not collected, or not known to be on the network
		}
		stale.add("", fmt.Sprintf("%s lladdr %s → %s (%s): no endpoint there has that address", e.IP, e.MAC, f.Dst, y.name), doctor.Warning)
	}
	for _, p := range []*fdbProblems{&wrong, &stale} {
		for _, svc := range p.order {
			items := p.by[svc]
			sev := p.worst
			what := fmt.Sprintf("%d remote endpoint(s)%s it does not place where they are", len(items), ofService(svc))
			if p == &stale {
				what = fmt.Sprintf("%d stale neighbour entr(ies) for addresses no endpoint has", len(items))
			}
			c.add(n, Finding{Code: CodeFDB, Severity: sev, Check: CheckFDB, Service: svc, Network: c.netLabel(k), Netns: ov.name,
				Summary:  fmt.Sprintf("overlay %s (network %s) has %s", ov.name, c.netLabel(k), what),
				Evidence: examples(items, 5),
				Confirm:  fmt.Sprintf("nsenter --net=/run/docker/netns/%s sh -c 'ip neigh show; bridge fdb show'", ov.name),
				Fix:      "the overlay driver programs these from the network's gossip (NetworkDB): check that this node reaches every other on TCP/UDP 7946 and UDP 4789, then restart dockerd on it (or re-deploy the service) to reprogram the entries"})
		}
	}
}

func ofService(svc string) string {
	if svc == "" {
		return ""
	}
	return " of service " + svc
}

// endpointLabel is the service of an endpoint namespace (a task's; "" for
// a sandbox or load balancer) and how to name it.
func endpointLabel(ns *topology.Namespace) (svc, label string) {
	switch {
	case ns.Docker != nil && ns.Docker.Service != "":
		t := ns.Docker.Task
		if t == "" {
			t = ns.Name
		}
		return ns.Docker.Service, "task " + t
	case ns.Role == topology.RoleIngressSandbox:
		return "", "ingress sandbox"
	case ns.Role == topology.RoleLB:
		return "", "load balancer " + ns.Name
	}
	return "", "netns " + ns.Name
}

// nodeName is " (node NAME)" for a collected node's address, " (no node
// collected has it)" otherwise.
func (c *cluster) nodeName(a netip.Addr) string {
	if y := c.byAddr[a]; y != nil {
		return " (" + y.name + ")"
	}
	return " (no node collected has it)"
}
