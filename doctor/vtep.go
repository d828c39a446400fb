package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// vtepSource: VXLAN packets to another node leave with the source address
// the host's route to that node picks, and the other nodes know this one
// by its advertise address (their FDB entries put its endpoints behind
// it; NetworkDB gossips from it). A route that picks another source (a
// second address, a src attribute, a VPN's route) makes the peers drop
// this node's VXLAN: `ip route get PEER` must answer src ADVERTISE.
func (c *checker) vtepSource() {
	const check = "vtep source"
	host := c.m.Lookup("host")
	if host == nil {
		return
	}
	// One check of the host: not "checked" when half of it was read.
	if host.Links == nil || host.Routes == nil {
		if host.Links == nil {
			c.cov.skip(check, "ip addr", "host")
		}
		if host.Routes == nil {
			c.cov.skip(check, "ip route", "host")
		}
		return
	}
	adv := topology.AdvertiseAddress(c.m)
	if !adv.Addr.IsValid() {
		return
	}
	// One finding per wrong source: the routes that pick it, and the
	// peers they lead to.
	type wrong struct {
		rc     topology.RouteChoice // the first peer's
		routes []string
		peers  []topology.PeerNode
	}
	bySrc := map[netip.Addr]*wrong{}
	var order []netip.Addr
	for _, p := range topology.PeerNodes(c.m) {
		rc, ok := host.RouteLookup(p.Addr)
		if !ok || !rc.Src.IsValid() || rc.Src == adv.Addr {
			continue
		}
		w := bySrc[rc.Src]
		if w == nil {
			w = &wrong{rc: rc}
			bySrc[rc.Src] = w
			order = append(order, rc.Src)
		}
		w.peers = append(w.peers, p)
		if r := fmt.Sprintf("%s, source %s (%s)", rc.Route, rc.Src, rc.SrcFrom); !slices.Contains(w.routes, r) {
			w.routes = append(w.routes, r)
		}
	}
	for _, src := range order {
		w := bySrc[src]
		sev := Error
		if adv.Weak {
			sev = Warning
		}
		first := w.peers[0].Addr
		var addrs, known []string
		for _, p := range w.peers {
			addrs = append(addrs, p.Addr.String())
			known = append(known, fmt.Sprintf("%s (%s)", p.Addr, p.From))
		}
		dev := "DEV"
		if w.rc.Dev != nil {
			dev = w.rc.Dev.Name
		}
		c.add(Finding{Code: "vtep-source", Severity: sev, Netns: "host",
			Summary: fmt.Sprintf("the route to %s picks source %s, not the node's advertise address %s: its VXLAN and gossip packets leave from an address the other nodes do not know, and they drop them",
				strings.Join(addrs, ", "), w.rc.Src, adv.Addr),
			Evidence: fmt.Sprintf("ip route get: %s; the advertise address is %s (%s); the peers: %s",
				strings.Join(w.routes, "; "), adv.Addr, adv.From, strings.Join(known, ", ")),
			Confirm: fmt.Sprintf("ip route get %s; docker info --format '{{.Swarm.NodeAddr}}'", first),
			Fix: fmt.Sprintf("make the route to the other nodes leave from %s (ip route replace %s dev %s src %s, or drop the address or route that wins), or give the node the address it sends from as its advertise/data-path address (docker swarm leave, then join with --advertise-addr / --data-path-addr)",
				adv.Addr, w.rc.Route.DstString(), dev, adv.Addr)})
	}
	c.cov.ran(check)
}
