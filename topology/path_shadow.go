package topology

import "fmt"

// Docker 28.0.0's regression (moby#49536): its bridge driver put DOCKER's
// `! -i docker_gwbridge -o docker_gwbridge -j DROP` ahead of the jump to
// DOCKER-INGRESS, and Docker 28's raw PREROUTING drops direct access to
// bridge endpoints; either DROP, or one of the node's own, can take a
// published port's packet before DOCKER-INGRESS accepts it. The path finds
// it by evaluating the packet through raw PREROUTING and filter FORWARD
// (with DOCKER-USER and DOCKER-FORWARD), never by looking for rules.

// ingressWouldAccept says, for a packet filter FORWARD dropped in the host,
// whether Docker's DOCKER-INGRESS would have accepted it had it got there:
// the drop then shadows it. A drop in DOCKER-USER is the operator's own
// policy, and a policy drop means DOCKER-INGRESS was never jumped to (its
// jump gone): neither is a shadow. "" when it is none.
func ingressWouldAccept(ns *Namespace, d Decision, pkt Packet) string {
	if d.By == nil || d.By.Chain == "DOCKER-USER" || ns.Firewall.Table("filter").Chain("DOCKER-INGRESS") == nil {
		return ""
	}
	e := Eval(ns, "filter", "DOCKER-INGRESS", &pkt)
	if e.Verdict != ActAccept || e.By == nil {
		return ""
	}
	return fmt.Sprintf("DOCKER-INGRESS would accept it (%q) but the drop in %s comes first", e.By.Rule.Text, d.By.Chain)
}

// rawDrop ends a published port's walk that raw PREROUTING drops: before
// conntrack and NAT, so before Docker's DNAT and DOCKER-INGRESS. When nat
// PREROUTING would DNAT the packet (the port is published) the drop
// shadows the ingress; else the port is not published here.
func (w *walker) rawDrop(host *Namespace, d Decision, pkt Packet, q Query) error {
	probe := pkt
	n := Eval(host, "nat", "PREROUTING", &probe)
	if n.Verdict != ActDNAT {
		if why := publishedElsewhere(w.m, q); why != "" {
			w.brk(&host.Name, BreakFilterDrop, fmt.Sprintf("raw PREROUTING %s %s; %s/%d %s", dropBy(d), pkt, q.Proto, q.Port, why))
			return nil
		}
		return &NotPublishedError{q.Proto, q.Port}
	}
	w.brk(&host.Name, BreakIngressShadowed, fmt.Sprintf("raw PREROUTING %s %s before nat %s DNATs it to %s (%q)",
		dropBy(d), pkt, n.By.Chain, Endpoint{probe.Dst, uint16(probe.DPort)}, n.By.Rule.Text))
	return nil
}
