package topology

import (
	"fmt"
	"strings"
)

// Break codes of a backend's part of the path.
const (
	BreakRedirectWrong Code = "redirect-wrong"   // the task gets another port than the service's target
	BreakWrongVTEP     Code = "vxlan-wrong-vtep" // the overlay sends a remote task's traffic to another node than Docker says
	BreakNoFDB         Code = "vxlan-no-fdb"     // the overlay does not know which node a remote task is on
	BreakStaleBackend  Code = "stale-backend"    // a real server no task owns, here or elsewhere
)

// remoteWay checks the way to a backend on another node: the overlay's
// neighbour entry gives its MAC, the FDB entry for that MAC the node (VTEP)
// VXLAN sends it to, which must be the node Docker says the task runs on.
// Both tables are programmed by the overlay driver; neither means no
// endpoint with that address exists (a stale real server). What was not
// collected makes the backend's part unknown.
func (w *walker) remoteWay(lb *Namespace, d *IPVSDest, b Backend) []Hop {
	ip := d.Addr
	brk := func(netns string, code Code, reason string) []Hop {
		return []Hop{{Netns: netns, Kind: HopBreak, Code: code, Reason: reason}}
	}
	gap := func(netns, reason string) []Hop {
		return []Hop{{Netns: netns, Kind: HopUnknown, Code: UnknownNotCollected, Reason: reason}}
	}
	if b.VTEP.IsValid() {
		if b.Node.IsValid() && b.Node != b.VTEP {
			ovl, _, _ := strings.Cut(b.Via, "/")
			return brk(ovl, BreakWrongVTEP, fmt.Sprintf("backend %s (task %s) runs on node %s, but the FDB entry for its MAC on %s sends its traffic to %s", ip, orUnknown(b.Task), b.Node, b.Via, b.VTEP))
		}
		return w.espLeg(b)
	}
	if unread := w.unread(lb); len(unread) > 0 {
		return gap(lb.Name, fmt.Sprintf("%s is owned by no namespace whose ip addr was read, and the ip addr of %s was not collected: it may be local", ip, strings.Join(unread, ", ")))
	}
	ov := w.overlayOf(d.Addr)
	if ov == nil {
		return gap(lb.Name, fmt.Sprintf("no overlay namespace holding %s's network was read: the way to it on another node cannot be checked", ip))
	}
	var missing []string
	if ov.Neighbours == nil {
		missing = append(missing, "ip neigh")
	}
	if ov.FDB == nil {
		missing = append(missing, "bridge fdb")
	}
	if len(missing) > 0 {
		return gap(ov.Name, fmt.Sprintf("its %s %s not collected: the way to %s on another node cannot be checked", strings.Join(missing, " and "), map[bool]string{true: "were", false: "was"}[len(missing) > 1], ip))
	}
	if n := w.neighbourIn(ov, ip); n != nil {
		return brk(ov.Name, BreakNoFDB, fmt.Sprintf("neighbour %s lladdr %s dev %s, and no bridge fdb entry for %s with a dst: VXLAN does not know which node %s is on", n.IP, n.MAC, n.Dev, n.MAC, ip))
	}
	if w.dockerKnows(ip) {
		return brk(ov.Name, BreakNoFDB, fmt.Sprintf("Docker has a task at %s, on another node, but %s has neither a neighbour nor an FDB entry for it", ip, ov.Name))
	}
	if !w.remote().everyTask {
		// Broken either way; but "no task has it" (and removing the
		// real server) would be read from what was not collected.
		return brk(ov.Name, BreakNoFDB, fmt.Sprintf("%s has neither a neighbour nor an FDB entry for %s: VXLAN does not know which node it is on; every node's tasks (docker network inspect --verbose) were not collected, so whether a task on another node has it (not programmed) or none (a stale real server) cannot be told", ov.Name, ip))
	}
	return brk(lb.Name, BreakStaleBackend, fmt.Sprintf("real server %s:%d belongs to no task: no namespace here owns it and %s knows no endpoint with that address (no neighbour, no FDB entry)", ip, d.Port, ov.Name))
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// judgeBackends checks what the local backends get against what the
// service serves: the port after the task's REDIRECT against the service's
// target port (published ports: ServiceTarget says it when they differ, a
// redirect-wrong break unless the task's ingress filter, which admits only
// the target port, already drops it), and a listener on it where the
// sockets were collected (NotListening: beyond the network path, which
// stays complete).
func (w *walker) judgeBackends(bs []Backend) {
	want, from := 0, ""
	if w.from == nil {
		want, from = w.serviceTarget(bs)
	}
	for i := range bs {
		b := &bs[i]
		if b.Remote || b.Netns == nil || hasKindHop(b.Hops, HopUnknown) {
			continue
		}
		ns := w.m.Lookup(*b.Netns)
		served := b.TargetPort
		for _, h := range b.Hops {
			if h.Kind == HopRedirect {
				served = h.ToPort
			}
		}
		if served == 0 {
			served = w.p.Port // no REDIRECT: the task gets the port as it came
		}
		if want != 0 && served != want {
			// The cause. The drop the task's filter makes of it, when
			// it does, stays the path's break: it is what happens.
			b.ServiceTarget = want
			if !hasBreak(b.Hops) {
				b.Hops = append(b.Hops, Hop{Netns: ns.Name, Kind: HopBreak, Code: BreakRedirectWrong, ToPort: want,
					Reason: fmt.Sprintf("task %s gets %s/%d on port %d, the service's target port is %d (%s)", b.IP, w.p.Proto, w.p.Port, served, want, from)})
			}
			continue
		}
		if hasBreak(b.Hops) || b.TargetPort == 0 || ns.Sockets == nil || listens(ns, w.p.Proto, b.TargetPort) {
			continue
		}
		// The network path is complete; the server behind it is not
		// there. Path shows it on the backend, doctor reports it.
		b.NotListening = true
	}
}

// serviceTarget is the port the service's tasks should serve, and where
// that comes from: Docker's target port; else the port most local tasks'
// ingress filters accept (dockerd writes `-A INPUT -d TASK_IP -p PROTO
// --dport TARGET -j ACCEPT` from the same target port as the REDIRECT, so a
// bundle without Docker's metadata still tells a wrong REDIRECT from a
// dropping filter); else what most local backends are redirected to.
func (w *walker) serviceTarget(bs []Backend) (int, string) {
	if t := w.dockerTarget(); t != 0 {
		return t, "Docker's target port"
	}
	accepts, redirects := votes{}, votes{}
	for _, b := range bs {
		if b.Remote || b.Netns == nil {
			continue
		}
		if ns := w.m.Lookup(*b.Netns); ns != nil {
			for _, r := range ns.firewallTable("filter").Chain("INPUT").rules() {
				if r.Target == "ACCEPT" && r.Dst != nil && !r.Dst.Neg && r.Dst.Net.IsSingleIP() && r.Dst.Net.Addr() == b.IP &&
					r.Proto != nil && r.Proto.Value == w.p.Proto && r.DPort() != 0 {
					accepts.add(r.DPort())
				}
			}
		}
		if hasKindHop(b.Hops, HopRedirect) {
			redirects.add(b.TargetPort)
		}
	}
	if best := accepts.best(); best != 0 {
		return best, "the port the tasks' filter INPUT accepts"
	}
	return redirects.best(), "the port most tasks are redirected to"
}

func (c *Chain) rules() []*Rule {
	if c == nil {
		return nil
	}
	return c.RuleList()
}

// votes counts ports; best is the most voted (the first to get there on a
// tie), 0 without votes.
type votes struct {
	n     map[int]int
	order []int
}

func (v *votes) add(port int) {
	if v.n == nil {
		v.n = map[int]int{}
	}
	if v.n[port] == 0 {
		v.order = append(v.order, port)
	}
	v.n[port]++
}

func (v *votes) best() int {
	best := 0
	for _, p := range v.order {
		if v.n[p] > v.n[best] {
			best = p
		}
	}
	return best
}

func listens(ns *Namespace, proto string, port int) bool {
	for _, s := range ns.Sockets {
		if s.Proto == proto && s.Port == port {
			return true
		}
	}
	return false
}

// SocketList lists a namespace's listening sockets ("tcp/80, udp/53"),
// "none" when it has none.
func SocketList(ns *Namespace) string {
	var s []string
	for _, k := range ns.Sockets {
		s = append(s, fmt.Sprintf("%s/%d", k.Proto, k.Port))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
