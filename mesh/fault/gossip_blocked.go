package fault

import (
	"fmt"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

// gossipDrops are the rules gossip-blocked inserts in the host's filter
// INPUT, as iptables-save prints them.
func gossipDrops() []string {
	return []string{
		fmt.Sprintf("-p tcp -m tcp --dport %d -j DROP", addrplan.GossipPort),
		fmt.Sprintf("-p udp -m udp --dport %d -j DROP", addrplan.GossipPort),
	}
}

func planGossipBlocked(p *planner) error {
	t, err := p.table(p.host(), "filter")
	if err != nil {
		return err
	}
	c := chainOf(t, "INPUT")
	for _, r := range c.All() {
		for _, d := range gossipDrops() {
			if spec(r) == d {
				return fmt.Errorf("%s filter INPUT has %q already (already broken?)", p.node.Name, d)
			}
		}
	}
	p.f.Detail = fmt.Sprintf("%s: filter INPUT drops tcp and udp %d (the gossip port) before anything else", p.node.Name, addrplan.GossipPort)
	p.expect(WhereHost, "")
	return p.rules(p.host(), "filter", nil, edit{chain: c, ins: gossipDrops()})
}
