package doctor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// serviceVIPs checks the east-west path to every service VIP of the node
// (topology.ServiceVIPs) from the first task of this node on its network:
// the analysis `meshtrace path --vip VIP --netns TASK` prints. Each break
// is a finding, what was not collected is NOT CHECKED. A VIP no task here
// can call is not this node's to check. --port narrows doctor to one
// published port, and so skips them.
func (c *checker) serviceVIPs() {
	if c.o.Port != 0 {
		return
	}
	var checked []string
	for _, v := range topology.ServiceVIPs(c.m) {
		if len(v.Clients) == 0 {
			continue
		}
		what := "VIP " + v.VIP.String()
		// The first client by name, not topology's choice (which puts
		// other services' tasks first): what Docker's metadata says must
		// not move the check, and a fault found, to another namespace.
		from := slices.Min(v.Clients)
		p, err := topology.FindPath(c.m, topology.Query{Proto: "tcp", VIP: v.VIP, Netns: from})
		if err != nil {
			c.unknown(what, from, fmt.Sprintf("%s: unknown: %v", what, err))
			continue
		}
		checked = append(checked, v.VIP.String())
		for _, line := range p.Unknowns() {
			c.unknown(what, unknownNetns(p, line), line)
		}
		if last := p.Hops[len(p.Hops)-1]; last.Kind == topology.HopBreak {
			c.vipBreak(v, from, last)
		}
		for _, b := range p.Backends {
			c.backendBreaks(b, what, "the task's filter INPUT must accept the service's port")
		}
	}
	if len(checked) > 0 {
		c.cov.ran("east-west VIPs (" + strings.Join(checked, ", ") + ")")
	}
}

// vipBreak turns a break of a VIP's path into a finding.
func (c *checker) vipBreak(v topology.ServiceVIP, from string, h topology.Hop) {
	what := "VIP " + v.VIP.String()
	svc := "the service"
	if v.Service != "" {
		svc = "service " + v.Service
	}
	f := Finding{Severity: Error, Netns: h.Netns, Port: what, Evidence: h.Reason}
	call := fmt.Sprintf("calls from %s to %s (%s)", from, what, svc)
	switch h.Code {
	case topology.BreakNoService, topology.BreakMarkMissing:
		f.Code = "vip-no-service"
		f.Summary = fmt.Sprintf("%s reach no load balancer in %s: no mark or IPVS service takes the VIP", call, h.Netns)
		f.Confirm = c.in(h.Netns, "iptables-save -t mangle; ipvsadm -Ln")
		f.Fix = "dockerd programs each VIP's MARK rule and IPVS service in its network's lb_ namespace: `docker service update --force SERVICE` re-programs them; check dockerd's log for IPVS errors"
	case topology.BreakFilterDrop:
		f.Code = "filter-drop"
		f.Summary = fmt.Sprintf("%s are dropped by the firewall in %s", call, h.Netns)
		f.Confirm = c.in(h.Netns, "iptables-save -c -t filter")
		f.Fix = "allow the call before the drop, or set the chain's policy back to ACCEPT"
	case topology.BreakSNATMissing:
		f.Code = "snat-missing"
		f.Summary = fmt.Sprintf("%s: %s does not SNAT balanced packets; tasks reply around it and the caller drops the replies", call, h.Netns)
		f.Confirm = c.in(h.Netns, "iptables-save -t nat")
		f.Fix = "re-create dockerd's `-A POSTROUTING -d SUBNET -m ipvs --ipvs -j SNAT --to-source LB_IP` in the lb_ namespace (restart dockerd on this node)"
	default:
		if !c.lbBreak(&f, h, what+" ("+svc+")") {
			f.Code = "vip-path-broken"
			f.Summary = fmt.Sprintf("%s break in %s", call, h.Netns)
			f.Fix = fmt.Sprintf("see `meshtrace path --vip %s --netns %s` for the hop where it stops", v.VIP, from)
		}
	}
	c.add(f)
}
