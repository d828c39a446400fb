package fault

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

// planVTEPSource gives the node a second address on its uplink and
// routes to every peer node preferring it as source: the VXLAN device
// has no fixed local address, so its packets to the peers leave from the
// second address, not the advertise address the peers' FDB entries name.
// The peers' VXLAN devices (learning on) drop them: a static FDB entry
// says the sender's endpoints are behind the advertise address.
func planVTEPSource(p *planner) error {
	idx := 0
	for i, n := range p.st.Nodes {
		if n.Name == p.node.Name {
			idx = i
		}
	}
	second := addrplan.SpareLANIP(idx)
	have, err := p.k.Routing.Addrs(p.host(), "eth0")
	if err != nil {
		return fmt.Errorf("%s: addresses: %w", p.node.Name, err)
	}
	for _, a := range have {
		if a.Addr() == second {
			return fmt.Errorf("%s has %s already (already broken?)", p.node.Name, second)
		}
	}
	var peers []string
	for _, n := range p.st.Nodes {
		if n.Name != p.node.Name {
			peers = append(peers, fmt.Sprintf("%s (%s)", n.IP, n.Name))
		}
	}
	if len(peers) == 0 {
		return fmt.Errorf("mesh %s has no node other than %s", p.st.Name, p.node.Name)
	}
	p.f.Address = second
	p.f.Detail = fmt.Sprintf("%s: second address %s on eth0; the routes to %s prefer it over the advertise address %s",
		p.node.Name, second, strings.Join(peers, ", "), p.node.IP)
	p.expect(WhereHost, "")
	addr := &AddrOp{Dev: "eth0", Prefix: netip.PrefixFrom(second, 32)}
	if err := p.step(p.with(p.host(), addr), p.with(p.host(), addr.inverse())); err != nil {
		return err
	}
	for _, n := range p.st.Nodes {
		if n.Name == p.node.Name {
			continue
		}
		route := &RouteOp{Dst: netip.PrefixFrom(n.IP, 32), Dev: "eth0", Src: second}
		if err := p.step(p.with(p.host(), route), p.with(p.host(), route.inverse())); err != nil {
			return err
		}
	}
	return nil
}
