package swarm

import (
	"fmt"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

// spi checks the encrypted overlays' IPsec state across nodes: every ESP SA
// a node sends to a peer with (outbound) must be there, with the same SPI,
// as an inbound SA on that peer, or the peer drops what the node sends. The
// node missing the inbound SA is the one named. Docker keeps inbound SAs for
// every key of a rotation but sends with the primary one only, so an
// inbound SA without an outbound twin is normal.
func (c *cluster) spi() {
	any := false
	for _, n := range c.nodes {
		if n.host != nil && n.host.xfrmSAs > 0 {
			any = true
		}
	}
	peers := map[*node][]topology.XfrmPeer{}
	for _, n := range c.nodes {
		switch {
		case !any:
			c.notApplicable(n, CheckSPI)
		case n.host == nil || !n.host.xfrm:
			c.notChecked(n, CheckSPI, "host: its xfrm state was not collected")
		default:
			peers[n] = n.host.xfrmPeers
			c.ran(n, CheckSPI)
		}
	}
	for _, n := range c.nodes {
		for _, p := range peers[n] {
			y := c.byAddr[p.Remote]
			if y == nil || y == n {
				continue
			}
			yp, read := peers[y]
			if !read {
				continue // not collected there: noted above
			}
			in := map[topology.SPI]bool{}
			for _, q := range yp {
				if n.addrs[q.Remote] {
					for _, sa := range q.In {
						in[sa.SPI] = true
					}
				}
			}
			var lost []string
			for _, sa := range p.Out {
				if sa.Proto == topology.XfrmESP && !in[sa.SPI] {
					lost = append(lost, sa.SPI.String())
				}
			}
			if len(lost) == 0 {
				continue
			}
			c.add(y, Finding{Code: CodeSPI, Severity: doctor.Error, Check: CheckSPI, Netns: "host",
				Summary: fmt.Sprintf("%s has no inbound ESP SA for what %s sends it: its encrypted overlay traffic from %s is dropped", y.name, n.name, n.name),
				Evidence: fmt.Sprintf("%s sends to %s with SPI %s (outbound SA %s → %s); %s holds no inbound SA from %s with that SPI",
					n.name, y.name, examples(lost, 4), p.Local, p.Remote, y.name, p.Local),
				Confirm: "ip xfrm state list (on both nodes)",
				Fix:     "the nodes' IPsec keys are out of step (Docker distributes and rotates them through the managers): restart dockerd on " + y.name + ", or remove and re-create the encrypted network"})
		}
	}
}
