package doctor

import (
	"fmt"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// embeddedDNS checks every task's way to Docker's embedded DNS server: a
// lookup of 127.0.0.11:53 must be DNATed to the task's resolver port
// (DOCKER_OUTPUT) and something must listen there. It is the walk `path
// --dns` prints (topology.FindDNSPath). A task whose lookups nothing
// DNATs is reported only where Docker set its resolver up (the chain, its
// socket, or the DNAT in the node's other sandboxes): a hand-made
// namespace without any of it is not Docker's to blame.
func (c *checker) embeddedDNS() {
	const rules, lsn = "embedded DNS rules", "embedded DNS listener"
	for _, ns := range c.m.Namespaces {
		if ns.Role != topology.RoleTask || !c.need(rules, "iptables-save", ns.Name, ns.Firewall != nil) {
			continue
		}
		p, err := topology.FindDNSPath(c.m, topology.DNSQuery{From: ns.Name})
		if err != nil {
			continue
		}
		last := p.Hops[len(p.Hops)-1]
		if p.Verdict == topology.VerdictUnknown {
			if last.Code == topology.UnknownNotCollected && strings.Contains(last.Reason, "(ss)") {
				c.cov.skip(lsn, "ss", ns.Name)
			} else {
				c.unknown("", ns.Name, "embedded DNS: unknown past "+ns.Name+": "+last.Reason)
			}
			continue
		}
		c.cov.ran(lsn)
		if last.Kind != topology.HopBreak {
			continue
		}
		task := taskName(ns)
		switch last.Code {
		case topology.BreakDNSRulesMissing:
			why := topology.EmbeddedDNSSetUp(c.m, ns)
			if why == "" {
				continue
			}
			c.add(Finding{Code: "dns-rules-missing", Severity: Error, Netns: ns.Name,
				Summary:  fmt.Sprintf("every DNS lookup in %s fails: nothing DNATs 127.0.0.11:53 to its embedded DNS server (service names and tasks.NAME do not resolve there)", task),
				Evidence: last.Reason + "; yet " + why,
				Confirm:  c.in(ns.Name, "iptables -t nat -S DOCKER_OUTPUT") + "; " + c.in(ns.Name, "ss -Htuln src 127.0.0.11"),
				Fix:      "dockerd writes these rules when the task's sandbox joins its networks: restart the task (docker service update --force SERVICE, or remove its container), and check that the iptables inside containers is the backend dockerd uses"})
		case topology.BreakDNSNoListener:
			c.add(Finding{Code: "dns-no-listener", Severity: Error, Netns: ns.Name,
				Summary:  fmt.Sprintf("every DNS lookup in %s fails: Docker's DNAT sends it to %s, where its embedded DNS server no longer listens", task, p.Resolver),
				Evidence: last.Reason + "; " + ruleEvidence(p.Hops[0].Rule, p.Hops[0].Packets),
				Confirm:  c.in(ns.Name, "ss -Htuln src 127.0.0.11") + "; " + c.in(ns.Name, "iptables -t nat -S DOCKER_OUTPUT"),
				Fix:      "dockerd's resolver for this sandbox stopped (it runs inside dockerd): restart the task (docker service update --force SERVICE); if every task is affected, restart dockerd"})
		case topology.BreakFilterDrop:
			c.add(Finding{Code: "filter-drop", Severity: Error, Netns: ns.Name,
				Summary:  fmt.Sprintf("DNS lookups in %s are dropped by its own firewall on the way to the embedded DNS server", task),
				Evidence: last.Reason,
				Confirm:  c.in(ns.Name, "iptables-save -c"),
				Fix:      "allow traffic to and from 127.0.0.11 in the task's filter table (Docker writes no such DROP)"})
		}
	}
}

// taskName names a task's namespace for a summary: "task web.1 (netns
// 55e431cb2652)", or "netns NAME" without Docker's name.
func taskName(ns *topology.Namespace) string {
	if d := ns.Docker; d != nil && (d.Task != "" || d.Container != "") {
		return fmt.Sprintf("task %s (netns %s)", orDefault(d.Task, d.Container), ns.Name)
	}
	return "netns " + ns.Name
}
