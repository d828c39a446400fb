package doctor

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// firewallSplit: the kernel runs both iptables backends (nf_tables and the
// legacy x_tables) on every packet. Docker writes its rules with one; a
// host firewall (ufw, an older tool) may hold rules in the other, where
// iptables with Docker's backend does not show them (moby#46636, #46147).
// Packets Docker's rules handle (each published port's, the gossip and
// VXLAN from another node) are evaluated through the other backend's
// tables: a drop there is an error, any other rule acting on them a
// warning. A legacy table holding only ACCEPT policies is no split.
func (c *checker) firewallSplit() {
	const check = "iptables backends"
	host := c.m.Lookup("host")
	if host == nil || !c.need(check, "iptables-save", "host", host.Firewall != nil) {
		return
	}
	c.cov.ran(check)
	docker, other := host.Firewall, host.OtherFirewall
	if other == nil {
		return
	}
	if _, ok := docker.HoldsDocker(); !ok {
		if _, ok := other.HoldsDocker(); ok {
			docker, other = other, docker
		}
	}
	chain, ok := docker.HoldsDocker()
	if !ok {
		return // Docker's rules are in neither: not a split of Docker's
	}
	alt := host.WithFirewall(other)
	type hit struct {
		where, evidence, verb string
		sev                   Severity
		what                  []string
	}
	hits := map[string]*hit{}
	var order []string
	record := func(what string, steps []topology.HookStep) {
		for _, st := range steps {
			d := st.Decision
			if d.Verdict == topology.EvalUnknown {
				c.unknown("", "host", fmt.Sprintf("%s: unknown for %s in the %s backend: %s", check, what, backendName(other), strings.Join(d.Notes, "; ")))
				continue
			}
			where, ev, sev := st.Table+" "+st.Chain, fmt.Sprintf("%s %s policy %s", st.Table, st.Chain, d.Policy), Warning
			switch {
			case d.By != nil:
				where = d.By.Table + " " + d.By.Chain
				ev = ruleEvidence(d.By.Rule.Text, d.By.Rule.Packets) + " (" + where + ")"
			case len(d.Marks) > 0:
				m := d.Marks[0]
				where, ev = m.Table+" "+m.Chain, ruleEvidence(m.Rule.Text, m.Rule.Packets)+" ("+m.Table+" "+m.Chain+")"
			}
			verb := "also acts on"
			switch {
			case d.Verdict.Drops():
				sev, verb = Error, "drops"
			case d.Verdict != "" && d.Verdict != topology.ActAccept:
				sev, verb = Error, "rewrites" // a NAT Docker's rules do not know of
			}
			h := hits[ev]
			if h == nil {
				h = &hit{where: where, evidence: ev, sev: sev, verb: verb}
				hits[ev] = h
				order = append(order, ev)
			}
			h.what = append(h.what, what)
		}
	}
	self, uplink := topology.NodeAddress(host)
	for _, pp := range c.ports() {
		p, err := topology.FindPath(c.m, topology.Query{Proto: pp.Proto, Port: pp.Port})
		if err != nil || len(p.Hops) == 0 || p.Hops[0].Kind != topology.HopDNAT || uplink == nil {
			continue
		}
		in := topology.Packet{Proto: pp.Proto, Src: clientAddr, SPort: 40000, Dst: self, DPort: pp.Port, InIface: uplink.Name}
		steps, _ := topology.Prerouting(alt, &in)
		to := p.Hops[0].To
		fwd := topology.Packet{Proto: pp.Proto, Src: clientAddr, SPort: 40000, Dst: to.Addr, DPort: int(to.Port), InIface: uplink.Name, DNATed: true}
		if l := host.RouteOut(to.Addr); l != nil {
			fwd.OutIface = l.Name
		}
		more, _ := topology.ForwardOut(alt, &fwd)
		record(fmt.Sprintf("published %s forwarded to %s", pp, to), append(steps, more...))
	}
	if adv := topology.AdvertiseAddress(c.m); adv.Addr.IsValid() {
		peers, _ := c.peersOf(host, adv.Addr)
		if len(peers) > 0 {
			for _, f := range []struct {
				proto string
				port  int
			}{{"udp", 4789}, {"tcp", GossipPort}, {"udp", GossipPort}} {
				pkt := topology.Packet{Proto: f.proto, Src: peers[0].Addr, SPort: 40000, Dst: adv.Addr, DPort: f.port, InIface: uplinkOf(host, adv)}
				steps, _ := topology.LocalIn(alt, &pkt)
				record(fmt.Sprintf("%s/%d from node %s", f.proto, f.port, peers[0].Addr), steps)
			}
		}
	}
	for _, k := range order {
		h := hits[k]
		c.add(Finding{Code: "firewall-split", Severity: h.sev, Netns: "host",
			Summary: fmt.Sprintf("Docker's rules are in the %s backend (%s), but the %s backend's %s %s %s: the kernel runs both, and iptables with Docker's backend does not show it",
				backendName(docker), chain, backendName(other), h.where, h.verb, strings.Join(h.what, "; ")),
			Evidence: h.evidence + " in the " + backendName(other) + " backend",
			Confirm:  "iptables-legacy-save -c; iptables-nft-save -c",
			Fix:      "keep every rule in the backend Docker uses: move the host firewall's rules there (update-alternatives --set iptables to Docker's, reload the firewall), then empty the other backend (its iptables -F, -X, and -P FORWARD ACCEPT)"})
	}
}

// clientAddr is an outside client in the packets doctor evaluates
// (TEST-NET-1, as the path's).
var clientAddr = netip.MustParseAddr("192.0.2.1")

func backendName(fw *topology.Firewall) string {
	if fw.Backend == "" {
		return "other"
	}
	return string(fw.Backend)
}

// uplinkOf is the link holding the node's advertise address.
func uplinkOf(host *topology.Namespace, adv topology.Advertise) string {
	if l, ok := host.Owns(adv.Addr); ok {
		return l.Name
	}
	return ""
}
