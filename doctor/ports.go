package doctor

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// portChecks follows one published port's path (topology.FindPath, the
// analysis `meshtrace path` prints) and turns it into the port's verdict,
// a finding for every break and the lines of what could not be checked.
func (c *checker) portChecks(pp topology.ProtoPort) {
	port := pp.String()
	p, err := topology.FindPath(c.m, topology.Query{Proto: pp.Proto, Port: pp.Port})
	var np *topology.NotPublishedError
	switch {
	case errors.As(err, &np):
		c.verdict(port, topology.VerdictBroken)
		c.add(Finding{Code: "published-port-no-dnat", Severity: Error, Netns: "host", Port: port,
			Summary:  fmt.Sprintf("%s is published (Docker says so) but the host does not DNAT it and no sandbox marks it", port),
			Evidence: "no DNAT for " + port + " in the host's nat table",
			Confirm:  "iptables-save -t nat | grep DOCKER-INGRESS",
			Fix:      "recreate the ingress plumbing: `docker service update --force SERVICE`, or restart dockerd on this node"})
		return
	case err != nil:
		c.verdict(port, topology.VerdictUnknown)
		c.unknown(port, "host", fmt.Sprintf("%s: unknown: %v", port, err))
		return
	}
	c.verdict(port, p.Verdict)
	for _, line := range p.Unknowns() {
		c.unknown(port, unknownNetns(p, line), line)
	}
	moved := c.dnatPort(p, pp)
	last := p.Hops[len(p.Hops)-1]
	// A DNAT that changes the port leaves the packet unmarked in the
	// sandbox: that is the DNAT's fault, already reported.
	if last.Kind == topology.HopBreak && !(moved && last.Code == topology.BreakMarkMissing) {
		c.breakFinding(p, last, pp)
	}
	c.staleConntrack(p, pp)
	for _, b := range p.Backends {
		if b.Netns != nil {
			if ns := c.m.Lookup(*b.Netns); ns != nil {
				c.need("listeners", "ss", ns.Name, ns.Sockets != nil)
			}
		}
		c.backendChecks(b, pp)
	}
	if c.o.Probe != nil && p.Complete {
		if err := c.o.Probe(pp.Proto, pp.Port); err != nil {
			c.unanswered = append(c.unanswered, probeFailure{pp, err})
		}
	}
}

// probeFailure is a published port whose path looks complete but whose
// probe got no answer.
type probeFailure struct {
	pp  topology.ProtoPort
	err error
}

// probeCauses are the codes of node-wide faults the path does not follow
// (the other iptables backend, the overlay's neighbours, the underlay's
// source address, routes, IPsec, checksums): a probe that fails while one
// of them is reported is its symptom, not a finding of its own.
var probeCauses = map[string]bool{"firewall-split": true, "stale-neigh": true, "vtep-source": true, "subnet-overlap": true,
	"bad-checksum": true, "esp-blocked": true, "xfrm-missing": true, "vxlan-blocked": true, "mtu-mismatch": true, "mtu-underlay": true}

// noAnswer reports the probes that got no answer, once every other check
// ran: a failure a reported cause explains is added to that finding's
// evidence; the others are no-answer (the model looks right, the probe
// says otherwise).
func (c *checker) noAnswer() {
	for _, u := range c.unanswered {
		port := u.pp.String()
		explained := false
		for i := range c.out {
			if f := &c.out[i]; probeCauses[f.Code] && f.Severity != Info && (f.Port == "" || f.Port == port) {
				f.Evidence += fmt.Sprintf("; a probe of %s got no answer (%v)", port, u.err)
				explained = true
				break
			}
		}
		if explained {
			continue
		}
		c.add(Finding{Code: "no-answer", Severity: Error, Netns: "host", Port: port,
			Summary:  fmt.Sprintf("%s looks right on paper but a probe got no answer", port),
			Evidence: u.err.Error(),
			Confirm:  fmt.Sprintf("meshtrace trace --port %d --proto %s --probe", u.pp.Port, u.pp.Proto),
			Fix:      "trace the probe to see the hop where it stops; check the task's server is running"})
	}
}

// unknownNetns is the namespace an unknown line of p is about.
func unknownNetns(p *topology.Path, line string) string {
	for _, h := range p.Hops {
		if h.Kind == topology.HopUnknown && strings.HasSuffix(line, h.Reason) {
			return h.Netns
		}
	}
	for _, b := range p.Backends {
		for _, h := range b.Hops {
			if h.Kind == topology.HopUnknown && strings.HasSuffix(line, h.Reason) {
				return h.Netns
			}
		}
	}
	return ""
}

// dnatPort: Docker DNATs to the sandbox on the published port itself; the
// sandbox's mark rule matches that port, so a DNAT that changes the port
// leaves packets unmarked.
func (c *checker) dnatPort(p *topology.Path, pp topology.ProtoPort) bool {
	h := p.Hops[0]
	if h.Kind != topology.HopDNAT {
		return false
	}
	ap := h.To.AddrPort()
	if !ap.IsValid() || int(ap.Port()) == pp.Port {
		return false
	}
	c.add(Finding{Code: "dnat-port-mismatch", Severity: Error, Netns: "host", Port: pp.String(),
		Summary:  fmt.Sprintf("%s is DNATed to port %d, not to the published port", pp, ap.Port()),
		Evidence: ruleEvidence(h.Rule, h.Packets),
		Confirm:  "iptables-save -t nat | grep -- '--dport " + fmt.Sprint(pp.Port) + "'",
		Fix:      fmt.Sprintf("the DNAT must keep port %d (the sandbox marks and balances on it): fix or remove the rule and let dockerd re-create it", pp.Port)})
	return true
}

// breakFinding translates a path break into a finding.
func (c *checker) breakFinding(p *topology.Path, h topology.Hop, pp topology.ProtoPort) {
	f := Finding{Severity: Error, Netns: h.Netns, Port: pp.String(), Evidence: h.Reason}
	switch h.Code {
	case topology.BreakDNATMissing:
		f.Code = "published-port-no-dnat"
		f.Summary = fmt.Sprintf("%s: the ingress sandbox still marks it, but the host has no DNAT for it", pp)
		f.Confirm = "iptables-save -t nat | grep DOCKER-INGRESS"
		f.Fix = "re-create the DOCKER-INGRESS DNAT (docker service update --force SERVICE, or restart dockerd on this node)"
	case topology.BreakUnowned:
		f.Code = "dnat-unowned"
		f.Summary = fmt.Sprintf("%s is rewritten to an address no namespace on this node owns", pp)
		f.Confirm = "iptables-save -t nat | grep DNAT; ip -n ingress_sbox addr"
		f.Fix = "the ingress sandbox's address changed or it is gone: restart dockerd to re-create ingress-sbox, or remove the stale DNAT"
	case topology.BreakIngressShadowed:
		f.Code = "ingress-shadowed"
		f.Summary = fmt.Sprintf("%s is dropped in %s before Docker's DOCKER-INGRESS accepts it: Docker 28.0.0's rule order (moby#49536), or a DROP put above Docker's rules", pp, h.Netns)
		f.Confirm = c.in(h.Netns, "iptables-save -c -t filter; iptables-save -c -t raw")
		f.Fix = "upgrade Docker to 28.0.1 or later (DOCKER-FORWARD runs DOCKER-INGRESS first); meanwhile put the jump to DOCKER-INGRESS right after DOCKER-USER (iptables -D FORWARD -j DOCKER-INGRESS; iptables -I FORWARD 2 -j DOCKER-INGRESS), or remove the DROP the evidence names"
	case topology.BreakFilterDrop:
		f.Code = "filter-drop"
		f.Summary = fmt.Sprintf("%s is dropped by the firewall in %s", pp, h.Netns)
		f.Confirm = c.in(h.Netns, "iptables-save -c -t filter")
		f.Fix = "allow it before the drop (Docker's DOCKER-INGRESS accept rules, or your DOCKER-USER rules), or set the chain's policy back to ACCEPT"
	case topology.BreakNoService, topology.BreakMarkMissing:
		if h.Code == topology.BreakMarkMissing || !hasKind(p.Hops, topology.HopMark) {
			f.Code = "mark-missing"
			f.Summary = fmt.Sprintf("%s reaches the ingress sandbox unmarked: no MARK rule for it, so IPVS never sees it", pp)
			f.Confirm = c.in(h.Netns, "iptables-save -t mangle")
			f.Fix = fmt.Sprintf("re-create the mark: `docker service update --force SERVICE` (dockerd writes -A PREROUTING -p %s --dport %d -j MARK --set-mark FWMARK)", pp.Proto, pp.Port)
		} else {
			f.Code = "mark-no-service"
			f.Summary = fmt.Sprintf("%s is marked in the ingress sandbox but no IPVS service takes that mark", pp)
			f.Confirm = c.in(h.Netns, "ipvsadm -Ln")
			f.Fix = "dockerd lost the IPVS service: `docker service update --force SERVICE` re-programs it; check dockerd's log for IPVS errors"
		}
	case topology.BreakIPVSUnavailable:
		if !c.emulatedNoBackends(&f, h, pp) {
			c.lbBreak(&f, h, pp.String())
		}
	case topology.BreakSNATMissing:
		f.Code = "snat-missing"
		f.Summary = fmt.Sprintf("%s: %s does not SNAT balanced packets; tasks reply around it and the client drops the replies", pp, h.Netns)
		f.Confirm = c.in(h.Netns, "iptables-save -t nat")
		f.Fix = "re-create dockerd's `-A POSTROUTING -d INGRESS_SUBNET -m ipvs --ipvs -j SNAT --to-source SANDBOX_IP` (restart dockerd on this node)"
	default:
		if !c.lbBreak(&f, h, pp.String()) {
			f.Code = "path-broken"
			f.Summary = fmt.Sprintf("%s breaks in %s", pp, h.Netns)
			f.Fix = "see `meshtrace path` for the hop where it stops"
		}
	}
	c.add(f)
}

// lbBreak words the breaks the load balancer's own state makes, the same
// on a published port's path and a VIP's (what names it: "tcp/8080", "VIP
// 10.0.1.2 (service api)"); false for another break.
func (c *checker) lbBreak(f *Finding, h topology.Hop, what string) bool {
	switch h.Code {
	case topology.BreakNoBackends:
		f.Code = "service-no-backends"
		f.Summary = fmt.Sprintf("the IPVS service behind %s has no real servers", what)
		f.Confirm = c.in(h.Netns, "ipvsadm -Ln")
		f.Fix = "no task of the service is running or healthy: check `docker service ps SERVICE`"
	case topology.BreakWeightZero:
		f.Code = "backends-weight-zero"
		f.Summary = fmt.Sprintf("every real server behind %s has weight 0 (drained)", what)
		f.Confirm = c.in(h.Netns, "ipvsadm -Ln")
		f.Fix = "tasks are shutting down or failing health checks; check `docker service ps SERVICE`"
	case topology.BreakIPVSUnavailable:
		f.Code = "ipvs-missing"
		f.Summary = "the kernel has no IPVS, so the routing mesh cannot balance " + what
		f.Confirm = "modprobe ip_vs && lsmod | grep ip_vs"
		f.Fix = "load ip_vs (modprobe ip_vs ip_vs_rr) or use a kernel built with CONFIG_IP_VS"
	default:
		return false
	}
	return true
}

// emulatedNoBackends: where the kernel has no IPVS and the load balancing
// is emulated with iptables (other marks still have their DNAT rules), a
// marked packet without emulation rules is a service whose real servers
// are gone: in the emulation a service exists only as its real servers'
// rules.
func (c *checker) emulatedNoBackends(f *Finding, h topology.Hop, pp topology.ProtoPort) bool {
	ns := c.m.Lookup(h.Netns)
	if ns == nil {
		return false
	}
	var marks []string
	for _, s := range ns.LBServices() {
		if s.Impl == topology.LBIptables && s.FWMark != 0 {
			marks = append(marks, fmt.Sprintf("%#x", s.FWMark))
		}
	}
	if len(marks) == 0 {
		return false
	}
	f.Code = "service-no-backends"
	f.Summary = fmt.Sprintf("%s is marked in %s, but the iptables emulation of IPVS there has no real server (DNAT rule) for its mark: the service has no backends", pp, h.Netns)
	f.Evidence = fmt.Sprintf("%s; emulated services exist only for marks %s", h.Reason, strings.Join(marks, ", "))
	f.Confirm = c.in(h.Netns, "iptables-save -t nat | grep -e '--mark'")
	f.Fix = "no task of the service is running (or its DNAT rules were removed): check the service's tasks; re-creating the mesh's load balancing restores one DNAT rule per task"
	return true
}

func hasKind(hs []topology.Hop, kind topology.HopKind) bool {
	for _, h := range hs {
		if h.Kind == kind {
			return true
		}
	}
	return false
}

// backendChecks turns the breaks of a backend's part of the path into
// findings: the REDIRECT and filter in the task, its listener, the way to
// a remote task.
func (c *checker) backendChecks(b topology.Backend, pp topology.ProtoPort) {
	port := pp.String()
	if b.ServiceTarget != 0 {
		// The task's ingress filter admits only the target port, so a
		// wrong REDIRECT also shows as a drop there: one finding, the
		// cause.
		ns := deref(b.Netns)
		c.add(Finding{Code: "redirect-wrong", Severity: Error, Netns: ns, Port: port,
			Summary:  fmt.Sprintf("%s: task %s (%s) gets port %d, the service's target port is %d", port, b.IP, ns, servedPort(b, pp), b.ServiceTarget),
			Evidence: redirectEvidence(b),
			Confirm:  c.in(ns, "iptables-save -t nat"),
			Fix:      fmt.Sprintf("the task's nat PREROUTING must REDIRECT %d to %d: `docker service update --force SERVICE` re-creates the task", pp.Port, b.ServiceTarget)})
		return
	}
	if b.NotListening {
		ns := c.m.Lookup(deref(b.Netns))
		c.add(Finding{Code: "task-not-listening", Severity: Error, Netns: ns.Name, Port: port,
			Summary:  fmt.Sprintf("%s: nothing listens on %s/%d in task %s (%s)", port, pp.Proto, b.TargetPort, b.IP, ns.Name),
			Evidence: fmt.Sprintf("listening sockets in %s: %s", ns.Name, topology.SocketList(ns)),
			Confirm:  c.in(ns.Name, "ss -lntu"),
			Fix:      "the task's server is down or listens on another port: check the container's logs and its published target port"})
	}
	c.backendBreaks(b, port, "the task's ingress filter must accept its target port (dockerd's -A INPUT -d TASK_IP -p PROTO --dport TARGET -j ACCEPT)")
}

// backendBreaks reports the breaks on a backend's own hops (a published
// port's or a VIP's, what): the remote ones by what the overlay says, any
// other as the task's filter dropping the balanced packet (fix says how to
// mend that filter).
func (c *checker) backendBreaks(b topology.Backend, what, fix string) {
	for _, h := range b.Hops {
		if h.Kind != topology.HopBreak {
			continue
		}
		switch h.Code {
		case topology.BreakXfrmMissing:
			// the IPsec check (xfrm-missing) names the peer once, for every port
		case topology.BreakWrongVTEP, topology.BreakNoFDB, topology.BreakStaleBackend:
			c.remoteBackend(b, h, what)
		default:
			c.add(Finding{Code: "task-filter-drop", Severity: Error, Netns: h.Netns, Port: what,
				Summary: fmt.Sprintf("%s: task %s drops the balanced packet", what, b.IP), Evidence: h.Reason,
				Confirm: c.in(h.Netns, "iptables-save -c -t filter"), Fix: fix})
		}
	}
}

// servedPort is the port the task gets: after its REDIRECT, else as
// published.
func servedPort(b topology.Backend, pp topology.ProtoPort) int {
	served := b.TargetPort
	for _, h := range b.Hops {
		if h.Kind == topology.HopRedirect {
			served = h.ToPort
		}
	}
	if served == 0 {
		served = pp.Port
	}
	return served
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func redirectEvidence(b topology.Backend) string {
	for _, h := range b.Hops {
		if h.Kind == topology.HopRedirect {
			return ruleEvidence(h.Rule, h.Packets)
		}
	}
	return "no REDIRECT rule in the task's nat PREROUTING matches the published port"
}

// staleConntrack: a UDP "connection" lives in conntrack as long as datagrams
// keep coming, so an entry created before a DNAT or backend changed keeps
// sending a client to the old destination.
func (c *checker) staleConntrack(p *topology.Path, pp topology.ProtoPort) {
	if pp.Proto != "udp" || len(p.Hops) == 0 || p.Hops[0].Kind != topology.HopDNAT {
		return
	}
	want := map[string]map[netip.Addr]bool{} // netns -> current reply sources
	if to := p.Hops[0].To; to.IsValid() {
		want["host"] = map[netip.Addr]bool{to.Addr: true}
	}
	for _, h := range p.Hops {
		if h.Kind == topology.HopIPVS {
			set := map[netip.Addr]bool{}
			for _, b := range p.Backends {
				set[b.IP] = true
			}
			want[h.Netns] = set
		}
	}
	for _, ns := range c.m.Namespaces { // in model order: the report is stable
		name := ns.Name
		ok, found := want[name]
		if !found || !c.need("stale conntrack", "conntrack", name, ns.Conntrack != nil) {
			continue
		}
		for _, e := range ns.Conntrack {
			if e.Proto != "udp" || int(e.Orig.DPort) != pp.Port || ok[e.Reply.Src] || e.Reply.Src == e.Orig.Dst {
				continue
			}
			c.add(Finding{Code: "stale-conntrack", Severity: Warning, Netns: name, Port: pp.String(),
				Summary:  fmt.Sprintf("%s: a conntrack entry still sends %s to %s, which is no longer where the path leads", pp, e.Orig.Src, e.Reply.Src),
				Evidence: fmt.Sprintf("udp src=%s dst=%s sport=%d dport=%d -> reply src=%s", e.Orig.Src, e.Orig.Dst, e.Orig.SPort, e.Orig.DPort, e.Reply.Src),
				Confirm:  c.in(name, fmt.Sprintf("conntrack -L -p udp --dport %d", pp.Port)),
				Fix:      c.in(name, fmt.Sprintf("conntrack -D -p udp --dport %d", pp.Port)) + " (the client's next datagram then follows the current rules)"})
		}
	}
}
