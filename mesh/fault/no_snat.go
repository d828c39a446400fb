package fault

import (
	"fmt"

	"github.com/meshtrace/meshtrace/topology"
)

func planNoSNAT(p *planner) error {
	t, err := p.table(p.sandbox(), "nat")
	if err != nil {
		return err
	}
	c := chainOf(t, "POSTROUTING")
	i, err := one(find(c, func(r *topology.Rule) bool { return r.Target == "SNAT" }), "SNAT rule in "+p.place(p.sandbox())+" nat POSTROUTING")
	if err != nil {
		return err
	}
	p.f.Service = ""
	p.f.Detail = fmt.Sprintf("removed %q from %s nat (every published port)", c.Rule(i).Text, p.place(p.sandbox()))
	p.expect(WhereSandbox, "")
	return p.rules(p.sandbox(), "nat", nil, edit{chain: c, del: []int{i}})
}
