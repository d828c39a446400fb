package fault

import "fmt"

func planDropMark(p *planner) error {
	t, err := p.table(p.sandbox(), "mangle")
	if err != nil {
		return err
	}
	c := chainOf(t, "PREROUTING")
	i, err := one(find(c, p.publishedRule("MARK")), fmt.Sprintf("MARK rule for %s in %s mangle PREROUTING", p.port(), p.place(p.sandbox())))
	if err != nil {
		return err
	}
	p.f.Detail = fmt.Sprintf("removed %q from %s mangle", c.Rule(i).Text, p.place(p.sandbox()))
	p.expect(WhereSandbox, p.port())
	return p.rules(p.sandbox(), "mangle", nil, edit{chain: c, del: []int{i}})
}
