package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// balance applies the namespace's load balancer to pkt and follows every
// backend: the emulated service that took it in nat, else the kernel's IPVS
// service at LOCAL_IN.
func (w *walker) balance(ns *Namespace, pkt *Packet, svc *IPVSService) {
	if svc == nil {
		svc = ns.kernelService(pkt)
	}
	if svc == nil {
		code, reason := w.noService(ns, pkt)
		if code == UnknownNotCollected {
			w.gap(ns, reason)
		} else {
			w.brk(&ns.Name, code, reason)
		}
		return
	}
	h := Hop{Netns: ns.Name, Kind: HopIPVS, FWMark: svc.FWMark, Scheduler: svc.Scheduler, Impl: svc.Impl}
	if svc.FWMark == 0 {
		h.VIP = netip.AddrPortFrom(svc.Addr, uint16(svc.Port)).String()
	}
	if len(svc.Rules) > 0 {
		h.Rule = svc.Rules[0]
	}
	w.p.Hops = append(w.p.Hops, h)
	if len(svc.Dests) == 0 {
		w.brk(&ns.Name, BreakNoBackends, fmt.Sprintf("%s has no real servers", svcName(svc)))
		return
	}
	allZero := true
	snats := make([]*Hop, len(svc.Dests))
	base := len(w.p.Backends)
	for i, d := range svc.Dests {
		allZero = allZero && d.Weight == 0 && !d.WeightUnknown
		bp := *pkt
		bp.Dst = d.Addr
		if d.Port != 0 {
			bp.DPort = d.Port
		}
		bp.IPVS, bp.DNATed = true, true
		if out := ns.RouteOut(bp.Dst); out != nil {
			bp.OutIface = out.Name
		}
		// IPVS masquerading sends the packet out through POSTROUTING.
		sub := walker{m: w.m, p: &Path{}}
		sub.eval(ns, "mangle", "POSTROUTING", &bp)
		if dd := sub.eval(ns, "nat", "POSTROUTING", &bp); dd.Verdict == "SNAT" || dd.Verdict == "MASQUERADE" {
			kind := HopSNAT
			if dd.Verdict == "MASQUERADE" {
				kind = HopMasquerade
			}
			hop := natHopOf(ns, kind, dd, &bp)
			snats[i] = &hop
		}
		w.p.Backends = append(w.p.Backends, w.backend(ns, d, bp))
	}
	// One SNAT for every backend is a shared hop; otherwise each backend
	// carries its own.
	shared, none := true, true
	for _, h := range snats {
		shared = shared && h != nil && h.Rule == snats[0].Rule && h.To == snats[0].To
		none = none && h == nil
	}
	switch {
	case shared:
		w.p.Hops = append(w.p.Hops, *snats[0])
	case !none:
		for i, h := range snats {
			if h != nil {
				b := &w.p.Backends[base+i]
				b.Hops = append([]Hop{*h}, b.Hops...)
			}
		}
	case ns != w.from:
		// Forwarded through this namespace, balanced, not SNATed: the
		// backends answer the client directly, around the balancer, whose
		// conntrack never sees the reply.
		w.brk(&ns.Name, BreakSNATMissing, fmt.Sprintf("%s: no SNAT/MASQUERADE in nat POSTROUTING for packets balanced to the backends: replies bypass %s and never reach the client", svcName(svc), ns.Name))
		return
	}
	if allZero {
		w.brk(&ns.Name, BreakWeightZero, fmt.Sprintf("%s: every real server has weight 0", svcName(svc)))
		return
	}
	w.p.Complete = true
	w.fillRemoteTargets(ns)
	w.judgeBackends(w.p.Backends[base:])
}

func svcName(s *IPVSService) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("IPVS FWM %d", s.FWMark)
	}
	return fmt.Sprintf("IPVS %s %s:%d", s.Proto, s.Addr, s.Port)
}

func (w *walker) noService(ns *Namespace, pkt *Packet) (code, reason string) {
	what := fmt.Sprintf("no IPVS service for %s", pkt)
	if pkt.Mark == 0 {
		var marks []string
		for _, s := range ns.LBServices() {
			if s.FWMark != 0 {
				marks = append(marks, fmt.Sprint(s.FWMark))
			}
		}
		if len(marks) > 0 {
			return BreakMarkMissing, fmt.Sprintf("%s arrives unmarked: no MARK rule matches it, and %s balances only fwmark services (%s)", pkt, ns.Name, strings.Join(marks, ", "))
		}
	}
	if pkt.Mark != 0 {
		what = fmt.Sprintf("mark %#x (%d) set but no IPVS service for fwmark %d", pkt.Mark, pkt.Mark, pkt.Mark)
	}
	switch {
	case ns.IPVS == nil:
		return UnknownNotCollected, "its ipvsadm was not collected: " + what + " among the load-balancing rules read"
	case !ns.IPVS.Available:
		return BreakIPVSUnavailable, what + " (" + ns.IPVS.Reason + ")"
	}
	return BreakNoService, what
}

// backend follows one real server to the namespace that owns it.
func (w *walker) backend(lb *Namespace, d *IPVSDest, pkt Packet) Backend {
	b := Backend{IP: d.Addr.String(), Port: d.Port, Forward: d.Forward, Weight: d.Weight, Hops: []Hop{}}
	owner := w.owner(d.Addr, lb, nil)
	if _, self := lb.Owns(d.Addr); owner == nil && self {
		// A task calling its own service through IPVS in its own
		// namespace (the pre-18.06 layout) may be balanced to itself.
		owner = lb
	}
	if owner == nil {
		b.Remote = true
		b.Via, b.VTEP = w.vtepFor(d.Addr)
		b.Task, b.Service, b.Node = w.remoteTask(d.Addr)
		b.Hops = append(b.Hops, w.remoteWay(lb, d, b)...)
		return b
	}
	name := owner.Name
	b.Netns = &name
	if owner.Docker != nil {
		b.Task, b.Service = owner.Docker.Task, owner.Docker.Service
	}
	if l, ok := owner.Owns(d.Addr); ok {
		b.In = l.Name
		pkt.InIface = l.Name
	}
	crossed(&pkt)
	sub := walker{m: w.m, p: &Path{}}
	ok, _ := sub.enterLocal(owner, &pkt)
	b.Hops = append(b.Hops, sub.p.Hops...)
	if ok {
		b.TargetPort = pkt.DPort
	}
	return b
}

// remoteTask names the Docker task with address a on a swarm network and
// the node it runs on, as `docker network inspect --verbose` lists remote
// tasks; a bare endpoint of the network gives only a name.
func (w *walker) remoteTask(a netip.Addr) (task, service, node string) {
	if w.m.Docker == nil {
		return "", "", ""
	}
	for _, n := range w.m.Docker.Networks {
		for _, t := range n.Tasks {
			if t.IP == a.String() {
				return t.Name, t.Service, t.Node
			}
		}
	}
	for _, n := range w.m.Docker.Networks {
		for name, ip := range n.Endpoints {
			if (ip == a.String() || strings.HasPrefix(ip, a.String()+"/")) && name != IngressSandboxEndpoint {
				return name, "", ""
			}
		}
	}
	return "", "", ""
}

// vtepFor finds, in the overlay namespaces, the VXLAN device and the remote
// VTEP that carry traffic to a: the neighbour entry gives a's MAC, the FDB
// entry for that MAC gives the VTEP.
func (w *walker) vtepFor(a netip.Addr) (via, vtep string) {
	for _, ns := range w.m.Namespaces {
		if ns.Role != RoleOverlay {
			continue
		}
		for _, n := range ns.Neighbours {
			if n.IP != a.String() {
				continue
			}
			for _, f := range ns.FDB {
				if f.MAC == n.MAC && f.Dst != "" {
					return ns.Name + "/" + f.Dev, f.Dst
				}
			}
			return ns.Name + "/" + n.Dev, ""
		}
	}
	return "", ""
}

// fillRemoteTargets gives remote backends the port their task serves:
// what the local backends of the same service are redirected to; else,
// when the balancer itself rewrote the port before balancing (Docker 1.12's
// REDIRECT in the ingress sandbox, before IPVS), that port, which every
// backend gets; else Docker's target port.
func (w *walker) fillRemoteTargets(lb *Namespace) {
	target := 0
	for _, b := range w.p.Backends {
		if !b.Remote && b.TargetPort != 0 {
			target = b.TargetPort
			break
		}
	}
	if target == 0 {
		for _, h := range w.p.Hops {
			if h.Kind == HopRedirect && h.Netns == lb.Name {
				target = h.ToPort
			}
		}
	}
	if target == 0 {
		target = w.dockerTarget()
	}
	for i := range w.p.Backends {
		if w.p.Backends[i].Remote {
			w.p.Backends[i].TargetPort = target
		}
	}
}

func (w *walker) dockerTarget() int {
	if w.m.Docker == nil {
		return 0
	}
	for _, s := range w.m.Docker.Services {
		for _, pt := range s.Ports {
			if pt.Published == w.p.Port && pt.Proto == w.p.Proto {
				return pt.Target
			}
		}
	}
	return 0
}
