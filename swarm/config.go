package swarm

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

// vsSysctls are the IPVS knobs Docker sets in every ingress sandbox and
// lb_ namespace (20.10 and later): nodes that disagree balance alike
// connections differently.
var vsSysctls = []string{"net.ipv4.vs.conntrack", "net.ipv4.vs.conn_reuse_mode", "net.ipv4.vs.expire_nodest_conn", "net.ipv4.vs.expire_quiescent_template"}

// vote is what one node says about one item.
type vote struct {
	n     *node
	value string
	netns string
}

// item is one thing every node must agree on ("VNI of network ingress").
type item struct {
	check CheckName
	code  Code
	sev   doctor.Severity
	what  string
	fix   string
	votes []vote
}

// config compares the settings every node must share: per overlay its VNI,
// MTU, subnet and VXLAN port; whether the kernel has IPVS; the load
// balancers' IPVS sysctls; the iptables backend.
func (c *cluster) config() {
	items := map[string]*item{}
	var order []string
	say := func(check CheckName, code Code, sev doctor.Severity, what, fix string, v vote) {
		key := string(check) + "\x00" + what
		it := items[key]
		if it == nil {
			it = &item{check: check, code: code, sev: sev, what: what, fix: fix}
			items[key] = it
			order = append(order, key)
		}
		it.votes = append(it.votes, v)
		c.ran(v.n, check)
	}
	overlayFix := "an overlay's settings come from its network's creation: nodes that disagree were programmed from different network state; remove and re-create the network (`docker network rm`/`create`) or restart dockerd on the node out of step"
	for _, n := range c.nodes {
		if !n.read {
			for _, ch := range []CheckName{CheckVNI, CheckMTU, CheckSubnet, CheckDataPort, CheckIPVS, CheckSysctl, CheckFirewall} {
				c.notChecked(n, ch, "node not collected")
			}
			continue
		}
		for _, k := range sortedKeys(n.overlays) {
			ov := n.overlays[k]
			net := c.netLabel(k)
			if !ov.vxlan {
				c.notChecked(n, CheckVNI, "%s: its VXLAN device's attributes were not collected (`ip -d addr`)", ov.name)
				c.notChecked(n, CheckDataPort, "%s: its VXLAN device's attributes were not collected (`ip -d addr`)", ov.name)
			} else {
				say(CheckVNI, CodeVNI, doctor.Error, "VXLAN id of network "+net, overlayFix, vote{n, strconv.Itoa(ov.vni), ov.name})
				say(CheckDataPort, CodeDataPort, doctor.Error, "VXLAN port of network "+net,
					"the data-path port is the swarm's (`docker swarm init --data-path-port`): every node must use the same; re-join the node out of step", vote{n, strconv.Itoa(ov.port), ov.name})
			}
			if ov.mtu != 0 {
				say(CheckMTU, CodeMTU, doctor.Warning, "MTU of network "+net, overlayFix, vote{n, strconv.Itoa(ov.mtu), ov.name})
			} else {
				c.notChecked(n, CheckMTU, "%s: its links were not collected", ov.name)
			}
			if ov.subnet.IsValid() {
				say(CheckSubnet, CodeSubnet, doctor.Error, "subnet of network "+net, overlayFix, vote{n, ov.subnet.String(), ov.name})
			} else {
				c.notChecked(n, CheckSubnet, "%s: its bridge's address was not collected", ov.name)
			}
		}
		if len(n.overlays) == 0 {
			for _, ch := range []CheckName{CheckVNI, CheckMTU, CheckSubnet, CheckDataPort} {
				c.notApplicable(n, ch)
			}
		}
		lbs := n.balancers()
		if n.sandbox != nil {
			switch ipvs := n.sandbox.ipvs; {
			case ipvs == nil:
				c.notChecked(n, CheckIPVS, "%s: its ipvsadm was not collected", n.sandbox.name)
			case ipvs.Available:
				say(CheckIPVS, CodeIPVS, doctor.Error, "IPVS in the kernel", ipvsFix, vote{n, "available", n.sandbox.name})
			default:
				say(CheckIPVS, CodeIPVS, doctor.Error, "IPVS in the kernel", ipvsFix, vote{n, "absent (" + ipvs.Reason + ")", n.sandbox.name})
			}
		} else {
			c.notApplicable(n, CheckIPVS)
		}
		for _, lb := range lbs {
			if lb.sysctls == nil {
				c.notChecked(n, CheckSysctl, "%s: its sysctls were not collected", lb.name)
				continue
			}
			role := "the ingress sandbox"
			if lb != n.sandbox {
				role = "lb_ of network " + c.netLabel(lb.key)
			}
			for _, key := range vsSysctls {
				if v, ok := lb.sysctls[key]; ok {
					say(CheckSysctl, CodeSysctl, doctor.Warning, key+" in "+role,
						"Docker sets these in every load-balancing namespace; a node that differs runs an older dockerd or had them changed by hand: set it back (`nsenter --net=/run/docker/netns/NETNS sysctl -w KEY=VALUE`) or restart dockerd there",
						vote{n, v, lb.name})
				}
			}
		}
		if len(lbs) == 0 {
			c.notApplicable(n, CheckSysctl)
		}
		switch {
		case n.host == nil || !n.host.fw:
			c.notChecked(n, CheckFirewall, "host: its iptables-save was not collected")
		case n.host.backend == "":
			c.notChecked(n, CheckFirewall, "host: its iptables backend is not known (the listing does not say)")
		default:
			say(CheckFirewall, CodeFirewall, doctor.Warning, "iptables backend", "Docker's rules live in one backend per node; nodes on different iptables variants (nf_tables, legacy) are easy to misread: install the same iptables alternative on every node (`update-alternatives --config iptables`) and restart dockerd",
				vote{n, string(n.host.backend), "host"})
		}
	}
	for _, key := range order {
		c.judge(items[key])
	}
}

const ipvsFix = "the routing mesh balances with IPVS on every node: load ip_vs (`modprobe ip_vs`) on the node without it, then restart dockerd there"

// judge names the nodes whose value is not the one most nodes have (every
// node with a value when no value has a majority of its own).
func (c *cluster) judge(it *item) {
	count := map[string]int{}
	for _, v := range it.votes {
		count[v.value]++
	}
	if len(count) < 2 {
		return
	}
	values := make([]string, 0, len(count))
	for v := range count {
		values = append(values, v)
	}
	sort.Slice(values, func(i, j int) bool {
		if count[values[i]] != count[values[j]] {
			return count[values[i]] > count[values[j]]
		}
		return values[i] < values[j]
	})
	major := values[0]
	if count[values[1]] == count[major] {
		major = "" // no majority: every node is named
	}
	for _, v := range it.votes {
		if v.value == major {
			continue
		}
		var others []string
		for _, o := range it.votes {
			if o.n != v.n {
				others = append(others, fmt.Sprintf("%s %s", o.n.name, o.value))
			}
		}
		summary := fmt.Sprintf("%s on %s is %s, on the other nodes %s", it.what, v.n.name, v.value, major)
		if major == "" {
			summary = fmt.Sprintf("%s differs between the nodes: %s on %s", it.what, v.value, v.n.name)
		}
		c.add(v.n, Finding{Code: it.code, Severity: it.sev, Check: it.check, Netns: v.netns,
			Summary: summary, Evidence: examples(others, 8), Fix: it.fix})
	}
}

// vxlanLink is the overlay's VXLAN device.
func vxlanLink(ov *topology.Namespace) *topology.Link {
	for _, l := range ov.Links {
		if l.Kind == "vxlan" || l.VXLAN != nil || strings.HasPrefix(l.Name, "vxlan") {
			return l
		}
	}
	return nil
}

// overlayMTU is the MTU of the overlay's VXLAN device, else its bridge's.
func overlayMTU(ov *topology.Namespace) int {
	if l := vxlanLink(ov); l != nil && l.MTU != 0 {
		return l.MTU
	}
	for _, l := range ov.Links {
		if l.Kind == "bridge" {
			return l.MTU
		}
	}
	return 0
}

// balancers are the node's load-balancing namespaces: the ingress
// sandbox, then the lb_ ones by network key.
func (n *node) balancers() []*lbDigest {
	var out []*lbDigest
	if n.sandbox != nil {
		out = append(out, n.sandbox)
	}
	for _, k := range sortedKeys(n.lbs) {
		out = append(out, n.lbs[k])
	}
	return out
}
