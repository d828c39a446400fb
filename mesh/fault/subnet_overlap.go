package fault

import (
	"fmt"
	"net/netip"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

// overlapNet is the LAN network subnet-overlap routes to: a /16 around
// the ingress network, the way a VPC or a corporate network in 10.0.0.0/8
// takes in Docker's default pool.
func overlapNet() netip.Prefix {
	return netip.PrefixFrom(addrplan.IngressSubnet.Addr(), 16).Masked()
}

// planSubnetOverlap makes a LAN network that overlaps the ingress: a
// host in it (an address on the client, which plays its router) and the
// node's route to it through the client. The node reaches that host; its
// tasks cannot, since their own ingress leg claims the addresses.
func planSubnetOverlap(p *planner) error {
	lanNet := overlapNet()
	routes, err := p.k.Routing.Routes(p.host())
	if err != nil {
		return fmt.Errorf("%s: routes: %w", p.node.Name, err)
	}
	for _, r := range routes {
		if r.Dst.Bits() > 0 && r.Dst.Overlaps(addrplan.IngressSubnet) {
			return fmt.Errorf("%s has a route to %s already (already broken?)", p.node.Name, r.Dst)
		}
	}
	lanHost, err := unusedIngressAddr(p.st)
	if err != nil {
		return err
	}
	client := p.st.Client.Netns
	have, err := p.k.Routing.Addrs(client, "eth0")
	if err != nil {
		return fmt.Errorf("client: addresses: %w", err)
	}
	for _, a := range have {
		if a.Addr() == lanHost {
			return fmt.Errorf("the client has %s already (already broken?)", lanHost)
		}
	}
	p.f.Address = lanHost
	p.f.Detail = fmt.Sprintf("%s: route %s via %s dev eth0 (a LAN network, with a host %s behind the client) overlaps the ingress network %s",
		p.node.Name, lanNet, p.st.Client.IP, lanHost, addrplan.IngressSubnet)
	p.expect(WhereHost, "")
	addr := &AddrOp{Dev: "eth0", Prefix: netip.PrefixFrom(lanHost, 32)}
	if err := p.step(p.with(client, addr), p.with(client, addr.inverse())); err != nil {
		return err
	}
	route := &RouteOp{Dst: lanNet, Gw: p.st.Client.IP, Dev: "eth0"}
	return p.step(p.with(p.host(), route), p.with(p.host(), route.inverse()))
}
