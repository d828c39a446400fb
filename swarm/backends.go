package swarm

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

// backends compares, on every node, each load balancer's real servers (the
// ingress sandbox's for published ports, each lb_ namespace's for the
// service VIPs of its network) with the tasks of the service that run. A
// load-balancing service is matched to its Docker service by what its
// firewall mark is set for (a published port, a VIP), else by the tasks
// its real servers are: never by the mark itself, which each node
// allocates on its own.
func (c *cluster) backends() {
	for _, n := range c.nodes {
		if !n.read {
			c.notChecked(n, CheckBackends, "node not collected")
			continue
		}
		lbs := 0
		if n.sandbox != nil && c.ingress != "" {
			lbs++
			c.balancer(n, n.sandbox, c.ingress)
		}
		for _, k := range sortedKeys(n.lbs) {
			lbs++
			c.balancer(n, n.lbs[k], k)
		}
		if lbs == 0 {
			switch {
			case n.sandbox != nil:
				c.notChecked(n, CheckBackends, "the ingress network of %s is not known (no overlay namespace holding its sandbox's address was read)", n.sandbox.name)
			case len(n.overlays) > 0 || n.docker != nil && len(n.docker.services) > 0:
				c.notChecked(n, CheckBackends, "no ingress sandbox or lb_ namespace was read")
			default:
				c.notApplicable(n, CheckBackends)
			}
		}
	}
	c.judgeAcrossNodes()
}

// balancer checks one load-balancing namespace of n on network k.
func (c *cluster) balancer(n *node, lb *lbDigest, k string) {
	if lb.ipvs == nil && !lb.firewall {
		c.notChecked(n, CheckBackends, "%s: neither ipvsadm nor iptables-save was collected", lb.name)
		return
	}
	if lb.ipvs == nil && len(lb.services) == 0 {
		c.notChecked(n, CheckBackends, "%s: its ipvsadm was not collected", lb.name)
		return
	}
	if lb.ipvs != nil && !lb.ipvs.Available && len(lb.services) == 0 {
		c.notChecked(n, CheckBackends, "%s: the kernel has no IPVS (%s)", lb.name, lb.ipvs.Reason)
		return
	}
	c.ran(n, CheckBackends)
	owners := c.markOwners(lb, k)
	seen := map[string]bool{}
	for _, s := range lb.services {
		name, how := owners.svc[s.FWMark], "its mark is set for "+owners.why[s.FWMark]
		if name == "" {
			name, how = c.byRealServers(s, k)
		}
		if name == "" {
			if len(s.Dests) > 0 && c.tasksKnown {
				c.add(n, Finding{Code: CodeBackends, Severity: doctor.Warning, Check: CheckBackends, Netns: lb.name, Network: c.netLabel(k),
					Summary:  fmt.Sprintf("%s: FWM %d (%#x) belongs to no service: no published port or VIP is marked with it and none of its %d real servers is a task that runs", lb.name, s.FWMark, s.FWMark, len(s.Dests)),
					Evidence: "real servers " + destList(s.Dests),
					Confirm:  confirmIPVS(lb.name), Fix: fixReprogram("")})
			}
			continue
		}
		seen[name] = true
		c.compareDests(n, lb, k, s, name, how)
	}
	c.unbalanced(n, lb, k, owners, seen)
}

// compareDests compares one load-balancing service's real servers with the
// running tasks of service svc on network k.
func (c *cluster) compareDests(n *node, lb *lbDigest, k string, s lbService, svc, how string) {
	want := c.tasksOf(svc, k)
	have := make(map[netip.Addr]lbDest, len(s.Dests))
	for _, d := range s.Dests {
		have[d.Addr] = d
	}
	var stale, wrong, missing, drained, unjudged []string
	var unjudgedAddrs []netip.Addr
	if !c.tasksKnown {
		c.recordDests(n, k, svc, s)
	}
	for _, d := range s.Dests {
		a := d.Addr
		if _, ok := want[a]; ok || !serving(d) {
			continue
		}
		if t := c.taskAt[k][a]; t != nil {
			wrong = append(wrong, fmt.Sprintf("%s is task %s of service %s (on %s)", a, t.name, t.service, t.node.name))
			continue
		}
		if where, ok := c.uncollectedAt(k, a); ok || !c.tasksKnown {
			unjudged = append(unjudged, fmt.Sprintf("%s%s", a, where))
			if !ok {
				unjudgedAddrs = append(unjudgedAddrs, a)
			}
			continue
		}
		stale = append(stale, fmt.Sprintf("%s (no task that runs has it)", a))
	}
	for a, t := range want {
		d, ok := have[a]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s (task %s on %s)", a, t.name, t.node.name))
		case !serving(d):
			drained = append(drained, fmt.Sprintf("%s (task %s on %s) has weight 0", a, t.name, t.node.name))
		}
	}
	for _, l := range [][]string{stale, wrong, missing, drained, unjudged} {
		sort.Strings(l)
	}
	if len(unjudged) > 0 {
		if len(unjudged) == len(unjudgedAddrs) && !c.tasksKnown {
			// Judged against the other nodes' balancers at the end.
			c.unjudged = append(c.unjudged, unjudgedDests{n: n, lb: lb, k: k, svc: svc, mark: s.FWMark, addrs: unjudgedAddrs})
		} else {
			c.notChecked(n, CheckBackends, "%s: FWM %d of service %s: real servers %s may be tasks on nodes not collected", lb.name, s.FWMark, svc, strings.Join(unjudged, ", "))
		}
	}
	if len(stale)+len(wrong)+len(missing)+len(drained) == 0 {
		return
	}
	sev := doctor.Warning
	var what []string
	if len(stale)+len(wrong) > 0 {
		sev = doctor.Error
		what = append(what, fmt.Sprintf("%d real server(s) that are no task of %s", len(stale)+len(wrong), svc))
	}
	if len(missing)+len(drained) > 0 {
		what = append(what, fmt.Sprintf("%d task(s) of %s that run but get no traffic from here", len(missing)+len(drained), svc))
	}
	var ev []string
	if len(stale) > 0 {
		ev = append(ev, "stale real servers: "+examples(stale, 5))
	}
	if len(wrong) > 0 {
		ev = append(ev, "real servers of another service: "+examples(wrong, 5))
	}
	if len(missing) > 0 {
		ev = append(ev, "not real servers here: "+examples(missing, 5))
	}
	if len(drained) > 0 {
		ev = append(ev, examples(drained, 5))
	}
	ev = append(ev, fmt.Sprintf("FWM %d (%#x) on this node; matched to %s because %s; %d real servers, %d tasks running", s.FWMark, s.FWMark, svc, how, len(s.Dests), len(want)))
	c.add(n, Finding{Code: CodeBackends, Severity: sev, Check: CheckBackends, Service: svc, Network: c.netLabel(k), Netns: lb.name,
		Summary:  fmt.Sprintf("%s's load balancer for %s has %s", lb.name, svc, strings.Join(what, " and ")),
		Evidence: strings.Join(ev, "; "), Confirm: confirmIPVS(lb.name), Fix: fixReprogram(svc)})
}

// unjudgedDests are one balancer's real servers that could not be judged
// against the tasks (Docker's metadata was not collected everywhere).
type unjudgedDests struct {
	n     *node
	lb    *lbDigest
	k     string
	svc   string
	mark  uint32
	addrs []netip.Addr
}

func (c *cluster) recordDests(n *node, k, svc string, s lbService) {
	if c.dests == nil {
		c.dests = map[string]map[string]map[*node]map[netip.Addr]bool{}
	}
	if c.dests[k] == nil {
		c.dests[k] = map[string]map[*node]map[netip.Addr]bool{}
	}
	if c.dests[k][svc] == nil {
		c.dests[k][svc] = map[*node]map[netip.Addr]bool{}
	}
	set := c.dests[k][svc][n]
	if set == nil {
		set = map[netip.Addr]bool{}
		c.dests[k][svc][n] = set
	}
	for _, d := range s.Dests {
		if serving(d) {
			set[d.Addr] = true
		}
	}
}

// judgeAcrossNodes judges the real servers no task list could: without
// Docker's tasks, a real server that this node's balancer has and the
// balancers of every other node (two at least) for the same service do
// not is this node out of step (a warning: which tasks run is not known).
// What the others share, or a service fewer than three nodes balance, is
// not checked.
func (c *cluster) judgeAcrossNodes() {
	for _, u := range c.unjudged {
		others := c.dests[u.k][u.svc]
		var alone, shared []string
		for _, a := range u.addrs {
			n := 0
			for on, set := range others {
				if on != u.n && set[a] {
					n++
				}
			}
			if n == 0 && len(others) >= 3 {
				alone = append(alone, a.String())
			} else {
				shared = append(shared, a.String())
			}
		}
		if len(shared) > 0 {
			c.notChecked(u.n, CheckBackends, "%s: FWM %d of service %s: real servers %s may be tasks (Docker's task list was not collected)", u.lb.name, u.mark, u.svc, strings.Join(shared, ", "))
		}
		if len(alone) == 0 {
			continue
		}
		c.add(u.n, Finding{Code: CodeBackends, Severity: doctor.Warning, Check: CheckBackends, Service: u.svc, Network: c.netLabel(u.k), Netns: u.lb.name,
			Summary: fmt.Sprintf("%s's load balancer for %s sends to %d real server(s) no other node's does", u.lb.name, u.svc, len(alone)),
			Evidence: fmt.Sprintf("only here: %s; FWM %d (%#x) on this node; the %d other nodes balancing %s do not have it (Docker's task list was not collected: which tasks run is not known)",
				examples(alone, 5), u.mark, u.mark, len(others)-1, u.svc),
			Confirm: confirmIPVS(u.lb.name), Fix: fixReprogram(u.svc)})
	}
}

// unbalanced reports the services whose published port or VIP lb marks
// but for whose mark it has no load-balancing service.
func (c *cluster) unbalanced(n *node, lb *lbDigest, k string, owners markOwners, seen map[string]bool) {
	for _, mark := range owners.order {
		svc := owners.svc[mark]
		if svc == "" || seen[svc] || len(c.tasksOf(svc, k)) == 0 {
			continue
		}
		seen[svc] = true
		c.add(n, Finding{Code: CodeBackends, Severity: doctor.Error, Check: CheckBackends, Service: svc, Network: c.netLabel(k), Netns: lb.name,
			Summary:  fmt.Sprintf("%s marks %s for service %s with FWM %d, but has no load-balancing service for that mark", lb.name, owners.why[mark], svc, mark),
			Evidence: fmt.Sprintf("%d task(s) of %s run; %s", len(c.tasksOf(svc, k)), svc, lbList(lb)),
			Confirm:  confirmIPVS(lb.name), Fix: fixReprogram(svc)})
	}
}

// serving: a real server that gets new connections (weight 0 is Docker's
// way of draining one).
func serving(d lbDest) bool { return d.Weight > 0 || d.WeightUnknown }

// markOwners maps the marks a load-balancing namespace sets to the Docker
// service each is set for.
type markOwners struct {
	svc   map[uint32]string
	why   map[uint32]string
	order []uint32
}

// markOwners finds what each mark of lb's mangle table is set for: a
// published port (`-p PROTO --dport PORT -j MARK`, the ingress sandbox's
// rule) or a VIP (`-d VIP/32 -j MARK`), and the service publishing that port
// or owning that VIP on network k.
func (c *cluster) markOwners(lb *lbDigest, k string) markOwners {
	o := markOwners{svc: map[uint32]string{}, why: map[uint32]string{}}
	for _, r := range lb.marks {
		if o.svc[r.mark] != "" {
			continue
		}
		var svc, why string
		if r.vip.IsValid() {
			svc, why = c.serviceWithVIP(k, r.vip), "VIP "+r.vip.String()
		} else {
			svc, why = c.servicePublishing(r.proto, r.port), fmt.Sprintf("%s/%d", r.proto, r.port)
		}
		if svc == "" && !c.tasksKnown {
			// No task list to name it: what the mark is set for names
			// it the same on every node, to compare the nodes by.
			svc = why
		}
		if svc != "" {
			o.svc[r.mark], o.why[r.mark] = svc, why
			o.order = append(o.order, r.mark)
		}
	}
	return o
}

// serviceWithVIP is the service (the first by name) whose VIP on network
// k is a.
func (c *cluster) serviceWithVIP(k string, a netip.Addr) string {
	c.indexOwners()
	return c.vipOwner[k][a]
}

// servicePublishing is the service (the first by name) that publishes
// proto/port in ingress mode.
func (c *cluster) servicePublishing(proto string, port int) string {
	c.indexOwners()
	return c.portOwner[topology.ProtoPort{Proto: proto, Port: port}]
}

// indexOwners finds, once for every balancer of every node, the service
// each VIP and each published port is of.
func (c *cluster) indexOwners() {
	if c.vipOwner != nil {
		return
	}
	c.vipOwner, c.portOwner = map[string]map[netip.Addr]string{}, map[topology.ProtoPort]string{}
	for _, name := range sortedKeys(c.services) {
		for k, a := range c.services[name].vips {
			if c.vipOwner[k] == nil {
				c.vipOwner[k] = map[netip.Addr]string{}
			}
			if _, taken := c.vipOwner[k][a]; !taken && a.IsValid() {
				c.vipOwner[k][a] = name
			}
		}
		for _, p := range c.services[name].ports {
			pp := topology.ProtoPort{Proto: p.Proto, Port: p.Published}
			if _, taken := c.portOwner[pp]; !taken && ingressMode(p) {
				c.portOwner[pp] = name
			}
		}
	}
}

func ingressMode(p topology.DockerPort) bool { return p.Mode == "" || p.Mode == "ingress" }

// byRealServers names the service most of s's real servers are tasks of.
func (c *cluster) byRealServers(s lbService, k string) (string, string) {
	votes := map[string]int{}
	for _, d := range s.Dests {
		if t := c.taskAt[k][d.Addr]; t != nil {
			votes[t.service]++
		}
	}
	best := ""
	for _, name := range sortedKeys(votes) {
		if votes[name] > votes[best] {
			best = name
		}
	}
	if best == "" {
		return "", ""
	}
	return best, fmt.Sprintf("%d of its %d real servers are its tasks", votes[best], len(s.Dests))
}

// uncollectedAt reports whether another node's overlay or Docker's task list
// places address a of network k on a node that was not collected, and
// which: such a real server may be a task there.
func (c *cluster) uncollectedAt(k string, a netip.Addr) (string, bool) {
	if c.elsewhere == nil {
		c.elsewhere = map[string]map[netip.Addr]netip.Addr{}
		put := func(k string, a, at netip.Addr) {
			if !at.IsValid() || c.byAddr[at] != nil {
				return
			}
			if c.elsewhere[k] == nil {
				c.elsewhere[k] = map[netip.Addr]netip.Addr{}
			}
			c.elsewhere[k][a] = at
		}
		for _, n := range c.nodes {
			for k, ov := range n.overlays {
				dst := map[topology.MAC]netip.Addr{}
				for _, f := range ov.fdb {
					dst[f.MAC] = f.Dst
				}
				for _, e := range ov.neigh {
					put(k, e.IP, dst[e.MAC])
				}
			}
			if n.docker == nil {
				continue
			}
			for _, nw := range n.docker.networks {
				for _, t := range nw.taskNodes {
					put(netKeyOf(nw.id), t[0], t[1])
				}
			}
		}
	}
	at, ok := c.elsewhere[k][a]
	if !ok {
		return "", false
	}
	return fmt.Sprintf(" (on %s, which was not collected)", at), true
}

func destList(ds []lbDest) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s:%d w%d", d.Addr, d.Port, d.Weight))
	}
	return examples(s, 5)
}

func lbList(lb *lbDigest) string {
	var s []string
	for _, svc := range lb.services {
		s = append(s, fmt.Sprintf("FWM %d (%d real servers)", svc.FWMark, len(svc.Dests)))
	}
	if len(s) == 0 {
		return "it has no firewall-mark service"
	}
	return "its services: " + strings.Join(s, ", ")
}

func confirmIPVS(netns string) string {
	return fmt.Sprintf("nsenter --net=/run/docker/netns/%s ipvsadm -Ln; docker service ps SERVICE", netns)
}

func fixReprogram(svc string) string {
	if svc == "" {
		svc = "SERVICE"
	}
	return fmt.Sprintf("this node's dockerd has not applied the swarm's current tasks: `docker service update --force %s` reprograms every node; if the node stays out of step, restart dockerd there and check that it reaches the others on TCP/UDP 7946 (gossip)", svc)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
