package topology

import (
	"fmt"
)

// eastWest follows a service VIP from a task namespace: OUTPUT marks, the
// LB in the same namespace or in the namespace owning the VIP (lb_).
func eastWest(m *Model, q Query) (*Path, error) {
	from := m.Lookup(q.Netns)
	if from == nil {
		return nil, fmt.Errorf("netns %q not found", q.Netns)
	}
	p := &Path{Proto: q.Proto, Port: q.Port, VIP: q.VIP.String(), From: from.Name, Hops: []Hop{}, Backends: []Backend{}}
	port := q.Port
	if port == 0 {
		port = 80
		p.Notes = append(p.Notes, "no --port given: evaluated for port 80; fwmark services do not depend on it")
	}
	pkt := Packet{Proto: q.Proto, Dst: q.VIP, DPort: port, SPort: clientPort}
	if out := from.RouteOut(q.VIP); out != nil {
		pkt.OutIface = out.Name
		for _, a := range out.Addrs {
			if a.Addr().Is4() {
				pkt.Src = a.Addr()
				break
			}
		}
	}
	w := walker{m: m, p: p, from: from}
	w.eval(from, "mangle", "OUTPUT", &pkt)
	d := w.eval(from, "nat", "OUTPUT", &pkt)
	if w.stopped {
		return p, nil
	}
	switch d.Verdict {
	case "LB":
		w.balance(from, &pkt, emulatedBy(from, d.By.Rule))
		return p, nil
	case "DNAT":
		w.natHop(from, d, &pkt)
	}
	if from.kernelService(&pkt) != nil {
		w.balance(from, &pkt, nil)
		return p, nil
	}
	if d := w.eval(from, "filter", "OUTPUT", &pkt); d.Verdict == "DROP" || d.Verdict == "REJECT" {
		w.brk(&from.Name, BreakFilterDrop, fmt.Sprintf("filter OUTPUT %s %s", dropBy(d), &pkt))
		return p, nil
	}
	w.postrouting(from, &pkt)
	if w.stopped {
		return p, nil
	}
	next := w.owner(pkt.Dst, from, nil)
	if next == nil {
		w.brk(&from.Name, BreakNoService, fmt.Sprintf("no IPVS service for VIP %s in %s and no namespace on this node owns it", q.VIP, from.Name))
		return p, nil
	}
	if l, ok := next.Owns(pkt.Dst); ok {
		pkt.InIface = l.Name
	}
	crossed(&pkt)
	if next.Role == RoleTask && pkt.Mark == 0 && len(next.LBServices()) == 0 {
		// Not a VIP: the address of a task (--endpoint-mode dnsrr hands
		// these out). The call goes straight to it, unbalanced.
		p.Notes = append(p.Notes, fmt.Sprintf("%s is not a service VIP but the address of task %s: no load balancing (endpoint-mode dnsrr, or a task address used directly)", q.VIP, next.Name))
		d := &IPVSDest{Addr: q.VIP, Forward: "direct", Weight: 1}
		p.Backends = append(p.Backends, w.backend(from, d, pkt))
		p.Complete = !hasBreak(p.Backends[0].Hops)
		return p, nil
	}
	ok, lb := w.enterLocal(next, &pkt)
	if !ok {
		return p, nil
	}
	w.balance(next, &pkt, lb)
	return p, nil
}

func hasBreak(hs []Hop) bool {
	for _, h := range hs {
		if h.Kind == HopBreak {
			return true
		}
	}
	return false
}
