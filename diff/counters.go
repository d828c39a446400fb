package diff

import (
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Areas of the counters (NotCompared): each is its own file in a bundle.
const (
	AreaSNMP          = "snmp-counters"    // /proc/net/snmp (snmp.txt)
	AreaNetstat       = "netstat-counters" // /proc/net/netstat (netstat.txt)
	AreaConntrackStat = "conntrack-stats"  // /proc/net/stat/nf_conntrack
	AreaLinkStats     = "link-stats"       // ip -s -s link
	AreaIPVSStats     = "ipvs-stats"       // ipvsadm -Ln --stats
	AreaRuleCounters  = "rule-counters"    // iptables-save -c
)

// netstatKey reports whether an nstat name comes from /proc/net/netstat
// (TcpExt, IpExt, MPTcpExt) rather than /proc/net/snmp.
func netstatKey(k string) bool {
	return strings.HasPrefix(k, "TcpExt") || strings.HasPrefix(k, "IpExt") || strings.HasPrefix(k, "MPTcpExt")
}

// snmpParts says which of /proc/net/snmp and /proc/net/netstat c holds:
// Counters.SNMP merges both, and a bundle may hold one without the other.
func snmpParts(c *topology.Counters) (snmp, netstat bool) {
	if c == nil {
		return false, false
	}
	for k := range c.SNMP {
		if netstatKey(k) {
			netstat = true
		} else {
			snmp = true
		}
	}
	return snmp, netstat
}

// keepCounters is c with only the parts that were read on both sides.
func keepCounters(c *topology.Counters, snmp, netstat, conntrack, links bool) *topology.Counters {
	if c == nil {
		return nil
	}
	out := &topology.Counters{}
	if snmp || netstat {
		out.SNMP = map[string]int64{}
		for k, v := range c.SNMP {
			if netstatKey(k) && netstat || !netstatKey(k) && snmp {
				out.SNMP[k] = v
			}
		}
	}
	if conntrack {
		out.Conntrack = c.Conntrack
	}
	if links {
		out.Links = c.Links
	}
	return out
}

// ruleCounters reports whether fw's rules carry counters (iptables-save
// -c, the kernel readers); a ruleset without rules is taken as read.
func ruleCounters(fw *topology.Firewall) bool {
	rules := false
	for _, t := range fw.Tables {
		for _, c := range t.Chains {
			for _, r := range c.All() {
				if r.HasCounters {
					return true
				}
				rules = true
			}
		}
	}
	return !rules
}

// ipvsStats reports whether an IPVS table carries its counters.
func ipvsStats(v *topology.IPVS) bool {
	for _, s := range v.Services {
		if s.Stats != nil {
			return true
		}
	}
	return len(v.Services) == 0
}

// counterDeltas turns every counter that moved into a change (through
// topology.DiffNamespaceCounters, over the parts both sides read), and
// says which counters could not be compared.
func (d *netnsDiff) counterDeltas(a, b *topology.Namespace) {
	va, vb := *a, *b
	ca, cb := a.Counters, b.Counters
	snmpA, netA := snmpParts(ca)
	snmpB, netB := snmpParts(cb)
	snmp := d.collected(AreaSNMP, snmpA, snmpB)
	netstat := d.collected(AreaNetstat, netA, netB)
	conntrack := d.collected(AreaConntrackStat, ca != nil && ca.Conntrack != nil, cb != nil && cb.Conntrack != nil)
	links := d.collected(AreaLinkStats, ca != nil && ca.Links != nil, cb != nil && cb.Links != nil)
	va.Counters = keepCounters(ca, snmp, netstat, conntrack, links)
	vb.Counters = keepCounters(cb, snmp, netstat, conntrack, links)
	if a.Firewall != nil && b.Firewall != nil && !d.collected(AreaRuleCounters, ruleCounters(a.Firewall), ruleCounters(b.Firewall)) {
		va.Firewall, vb.Firewall = nil, nil // policies print [0:0] without -c: nothing to compare
	}
	if a.IPVS != nil && b.IPVS != nil && a.IPVS.Available && b.IPVS.Available {
		d.collected(AreaIPVSStats, ipvsStats(a.IPVS), ipvsStats(b.IPVS))
	}
	for _, cd := range topology.DiffNamespaceCounters(&va, &vb) {
		d.counters = append(d.counters, Change{Netns: d.netns, Kind: CounterMoved, Op: Changed, Object: cd.Object,
			Field: cd.Counter, Before: utoa(cd.Before), After: utoa(cd.After), Summary: counterSummary(cd),
			Counter: &cd, Auto: true})
	}
}
