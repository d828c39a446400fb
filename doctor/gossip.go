package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// GossipPort is NetworkDB's gossip port (memberlist), tcp and udp, that
// every node must reach on every other: without it a node drops out of
// the networks' peer lists and stops learning where the tasks are.
const GossipPort = 7946

// nodeFlow is traffic between this node and the others that the host's
// firewall must let through both ways: the protocols, and the port ("" for
// a protocol without ports, such as ESP).
type nodeFlow struct {
	protos []string
	port   int
}

// nodeDrop is what the host's firewall drops of a nodeFlow: one dropping
// rule (or policy) in one direction, and which peers and protocols it
// drops.
type nodeDrop struct {
	dir, where, evidence string
	what                 []string
	// protos are the protocols dropped, in flow order ("tcp/udp").
	protos []string
}

func (d nodeDrop) proto() string { return strings.Join(d.protos, "/") }

// peersOf are the other nodes to check traffic with, and whether they are
// only a stand-in: where Docker says this node is alone in its swarm
// networks (their peers are this node only), an address on the node's own
// LAN plays one (a node joining would come from there). Where no other
// node is known and Docker's metadata was not collected, there is none:
// the caller's check did not run for lack of it (never a guess).
func (c *checker) peersOf(host *topology.Namespace, self netip.Addr) ([]topology.PeerNode, bool) {
	if peers := topology.PeerNodes(c.m); len(peers) > 0 {
		return peers, false
	}
	if !c.alone() {
		return nil, false
	}
	l, ok := host.Owns(self)
	if !ok {
		return nil, false
	}
	for _, p := range l.Addrs {
		if p.Addr() != self || p.Bits() >= 31 {
			continue
		}
		for a := p.Masked().Addr().Next(); p.Contains(a); a = a.Next() {
			if _, own := host.Owns(a); !own {
				return []topology.PeerNode{{Addr: a, From: fmt.Sprintf("no other node is known: %s, on the node's LAN %s, stands for one", a, p.Masked())}}, true
			}
		}
	}
	return nil, false
}

// nodeCheck says whether a check of the traffic between this node and the
// others can run, recording why not on the coverage line: the host's
// firewall and links must have been read, and another node be known (or
// Docker say there is none yet). It returns the peers and this node's
// advertise address.
func (c *checker) nodeCheck(check string, host *topology.Namespace) ([]topology.PeerNode, bool, topology.Advertise, bool) {
	adv := topology.AdvertiseAddress(c.m)
	switch {
	case host.Firewall == nil:
		c.cov.skip(check, "iptables-save", "host")
	case host.Links == nil:
		c.cov.skip(check, "ip addr", "host")
	case !adv.Addr.IsValid():
		c.cov.skip(check, "the node's address (ip addr)", "host")
	default:
		peers, standIn := c.peersOf(host, adv.Addr)
		if len(peers) == 0 {
			c.cov.skip(check, "the other nodes (docker network inspect)", "docker")
			break
		}
		c.cov.ran(check)
		return peers, standIn, adv, true
	}
	return nil, false, adv, false
}

// alone reports whether Docker's metadata says this node is its swarm
// networks' only peer.
func (c *checker) alone() bool {
	if c.m.Docker == nil {
		return false
	}
	n := 0
	for _, net := range c.m.Docker.Networks {
		n += len(net.Peers)
	}
	return n > 0 // every peer is this node's (PeerNodes found none other)
}

// nodeDrops evaluates flow between this node (self) and each peer through
// the host's hooks (topology.LocalIn for what a peer sends, LocalOut for
// what this node sends) and groups what is dropped by rule. What cannot
// be decided is listed under unknown.
func (c *checker) nodeDrops(host *topology.Namespace, self netip.Addr, peers []topology.PeerNode, flow nodeFlow, check string) []nodeDrop {
	byRule := map[string]*nodeDrop{}
	var order []string
	for _, peer := range peers {
		dev := ""
		if rc, ok := host.RouteLookup(peer.Addr); ok && rc.Dev != nil {
			dev = rc.Dev.Name
		} else if l, ok := host.Owns(self); ok {
			dev = l.Name
		}
		for _, proto := range flow.protos {
			sport := 40000
			if proto == "udp" {
				sport = flow.port // memberlist sends udp from its own port
			}
			for _, dir := range []string{"in", "out"} {
				pkt := topology.Packet{Proto: proto, Src: peer.Addr, SPort: sport, Dst: self, DPort: flow.port, InIface: dev}
				run := topology.LocalIn
				if dir == "out" {
					pkt = topology.Packet{Proto: proto, Src: self, SPort: sport, Dst: peer.Addr, DPort: flow.port, OutIface: dev}
					run = topology.LocalOut
				}
				what := describeFlow(pkt, flow.port != 0)
				_, end := run(host, &pkt)
				if end == nil {
					continue
				}
				d := end.Decision
				if d.Verdict == topology.EvalUnknown {
					c.unknown("", "host", fmt.Sprintf("%s: unknown for %s: %s", check, what, strings.Join(d.Notes, "; ")))
					continue
				}
				where := end.Table + " " + end.Chain
				ev := fmt.Sprintf("%s policy %s", where, d.Policy)
				if d.By != nil {
					where = d.By.Table + " " + d.By.Chain
					ev = ruleEvidence(d.By.Rule.Text, d.By.Rule.Packets) + " (" + d.By.Table + " " + d.By.Chain + ")"
				}
				key := dir + "\x00" + ev
				nd := byRule[key]
				if nd == nil {
					nd = &nodeDrop{dir: dir, where: where, evidence: ev}
					byRule[key] = nd
					order = append(order, key)
				}
				nd.what = append(nd.what, what)
				if !slices.Contains(nd.protos, proto) {
					nd.protos = append(nd.protos, proto)
				}
			}
		}
	}
	out := make([]nodeDrop, 0, len(order))
	for _, k := range order {
		out = append(out, *byRule[k])
	}
	return out
}

func describeFlow(p topology.Packet, ports bool) string {
	if !ports {
		return fmt.Sprintf("%s %s -> %s", p.Proto, p.Src, p.Dst)
	}
	return fmt.Sprintf("%s %s -> %s:%d", p.Proto, p.Src, p.Dst, p.DPort)
}

// gossipBlocked: the host's firewall must let the gossip port (tcp and
// udp 7946) through to and from every other node. Each packet is
// evaluated through every table of the host's hooks, as the kernel runs
// them; with no other node known, a node on the LAN stands for one (a
// warning: a node joining would be cut off).
func (c *checker) gossipBlocked() {
	const check = "gossip firewall"
	host := c.m.Lookup("host")
	if host == nil {
		return
	}
	peers, standIn, adv, ok := c.nodeCheck(check, host)
	if !ok {
		return
	}
	for _, d := range c.nodeDrops(host, adv.Addr, peers, nodeFlow{protos: []string{"tcp", "udp"}, port: GossipPort}, check) {
		sev := Error
		whom := "the other nodes"
		if standIn {
			sev, whom = Warning, "any node joining from the LAN"
		}
		summary := fmt.Sprintf("the host's %s drops gossip (%s %d) from %s: NetworkDB cannot reach this node, which then drops out of the networks' peers (tasks on other nodes are no longer programmed here)", d.where, d.proto(), GossipPort, whom)
		if d.dir == "out" {
			summary = fmt.Sprintf("the host's %s drops gossip (%s %d) to %s: this node cannot tell the others about its tasks", d.where, d.proto(), GossipPort, whom)
		}
		ev := d.evidence + " drops " + strings.Join(d.what, ", ")
		if standIn {
			ev += "; " + peers[0].From
		}
		c.add(Finding{Code: "gossip-blocked", Severity: sev, Netns: "host",
			Summary:  summary,
			Evidence: ev,
			Confirm:  fmt.Sprintf("iptables-save -c | grep -n -e %d -e ':%s'; from another node: nc -zv -w2 %s %d", GossipPort, chainOf(d.where), adv.Addr, GossipPort),
			Fix:      fmt.Sprintf("allow tcp and udp %d between the swarm nodes before that rule (with firewalld: --add-port=%d/tcp --add-port=%d/udp; ufw: allow %d), with 4789/udp (VXLAN) and 2377/tcp (managers)", GossipPort, GossipPort, GossipPort, GossipPort)})
	}
}

// chainOf is the chain of "table CHAIN".
func chainOf(where string) string {
	_, ch, _ := strings.Cut(where, " ")
	return ch
}
