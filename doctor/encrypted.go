package doctor

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// encrypted checks what an encrypted overlay (--opt encrypted) needs
// between this node and each other node of it: ESP (IP protocol 50)
// through the host's firewall both ways (esp-blocked), and Docker's IPsec
// state for the peer (xfrm-missing): an outbound and an inbound ESP SA
// with Docker's reqid, and the out policy that sends the peer's VXLAN
// through them. Without them the overlay's traffic to that node is
// dropped (cleartext VXLAN of an encrypted VNI is dropped by Docker's
// `-m policy --pol none` rule, moby#30766, #45635).
func (c *checker) encrypted() {
	overlays := topology.EncryptedOverlays(c.m)
	host := c.m.Lookup("host")
	if len(overlays) == 0 || host == nil {
		return
	}
	var names []string
	var peers []topology.PeerNode
	seen := map[netip.Addr]bool{}
	for _, o := range overlays {
		names = append(names, o.Name)
		for _, p := range o.Peers {
			if !seen[p.Addr] {
				seen[p.Addr] = true
				peers = append(peers, p)
			}
		}
	}
	nets := strings.Join(names, ", ")
	const espCheck = "esp firewall"
	if check, standIn, adv, ok := c.nodeCheck(espCheck, host); ok {
		if len(peers) > 0 {
			check, standIn = peers, false // the encrypted overlays' own peers
		}
		for _, d := range c.nodeDrops(host, adv.Addr, check, nodeFlow{protos: []string{"esp"}}, espCheck) {
			sev, whom := Error, "the other nodes of "+nets
			if standIn {
				sev, whom = Warning, "any node joining from the LAN"
			}
			dir := "from"
			if d.dir == "out" {
				dir = "to"
			}
			c.add(Finding{Code: "esp-blocked", Severity: sev, Netns: "host",
				Summary:  fmt.Sprintf("the host's %s drops ESP (IP protocol 50) %s %s: the encrypted overlay %s carries nothing between them", d.where, dir, whom, nets),
				Evidence: d.evidence + " drops " + strings.Join(d.what, ", "),
				Confirm:  fmt.Sprintf("iptables-save -c | grep -n -e esp -e ' 50 ' -e ':%s'; tcpdump -ni any esp", chainOf(d.where)),
				Fix:      "allow ESP between the swarm nodes before that rule (iptables -I INPUT -p esp -s PEER -j ACCEPT and the same in OUTPUT; firewalld: --add-protocol=esp; cloud security groups: protocol 50), beside udp/4789 and tcp/udp 7946"})
		}
	}
	const xfrmCheck = "ipsec state"
	// The host's links tell its own addresses from the peers'.
	if !c.need(xfrmCheck, "ip addr", "host", host.Links != nil) ||
		!c.need(xfrmCheck, "ip xfrm state", "host", host.Xfrm != nil && host.Xfrm.States != nil) ||
		!c.need(xfrmCheck, "ip xfrm policy", "host", host.Xfrm != nil && host.Xfrm.Policies != nil) {
		return
	}
	xps, _ := host.XfrmPeers()
	for _, p := range peers {
		var xp *topology.XfrmPeer
		for i := range xps {
			if xps[i].Remote == p.Addr {
				xp = &xps[i]
			}
		}
		out, in, pol := 0, 0, 0
		if xp != nil {
			out, in = dockerSAs(host.Xfrm, xp.Out), dockerSAs(host.Xfrm, xp.In)
			for _, i := range xp.Policies {
				if host.Xfrm.Policies[i].Action == topology.XfrmAllow {
					pol++
				}
			}
		}
		var missing []string
		if out == 0 {
			missing = append(missing, "no outbound ESP SA to it")
		}
		if in == 0 {
			missing = append(missing, "no inbound ESP SA from it")
		}
		if pol == 0 {
			missing = append(missing, "no out policy sending its VXLAN through an SA")
		}
		if len(missing) == 0 {
			continue
		}
		c.add(Finding{Code: "xfrm-missing", Severity: Error, Netns: "host",
			Summary: fmt.Sprintf("the encrypted overlay %s has no working IPsec with node %s (%s): traffic between their tasks is dropped",
				nets, p.Addr, strings.Join(missing, ", ")),
			Evidence: fmt.Sprintf("%s (%s); Docker's SAs with reqid %#x here: %d out, %d in, %d out policies for it", strings.Join(missing, "; "), p.From, topology.DockerXfrmReqid, out, in, pol),
			Confirm:  fmt.Sprintf("ip xfrm state | grep -A1 %s; ip xfrm policy | grep -B2 -A4 %s", p.Addr, p.Addr),
			Fix:      "dockerd programs the SAs when the peers exchange keys over gossip: check tcp/udp 7946 and ESP between the nodes, then restart dockerd on this node (or remove and re-create the service's tasks) so the keys are exchanged again"})
	}
}

// dockerSAs counts the ESP SAs among sas that Docker programmed (its
// reqid).
func dockerSAs(x *topology.Xfrm, sas []topology.XfrmSA) int {
	n := 0
	for _, sa := range sas {
		if sa.Proto == topology.XfrmESP && sa.Reqid == topology.DockerXfrmReqid && sa.State < len(x.States) {
			n++
		}
	}
	return n
}
