package fault

import "fmt"

func planNoDNAT(p *planner) error {
	c, i, err := p.hostDNAT()
	if err != nil {
		return err
	}
	p.f.Detail = fmt.Sprintf("removed %q from %s nat", c.Rule(i).Text, p.node.Name)
	p.expect(WhereHost, p.port())
	return p.rules(p.host(), "nat", nil, edit{chain: c, del: []int{i}})
}
