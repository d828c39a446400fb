package fault

import "fmt"

func planNoLB(p *planner) error {
	t, err := p.table(p.sandbox(), "nat")
	if err != nil {
		return err
	}
	var edits []edit
	n := 0
	for _, name := range []string{"PREROUTING", "OUTPUT"} {
		c := chainOf(t, name)
		var ix []int
		for _, s := range p.st.Services {
			ix = append(ix, find(c, isEmulationOf(s.FWMark))...)
		}
		if len(ix) > 0 {
			edits = append(edits, edit{chain: c, del: ix})
			n += len(ix)
		}
	}
	if n == 0 {
		return fmt.Errorf("no emulated IPVS rules in %s nat (already broken? see `meshtrace mesh repair`)", p.place(p.sandbox()))
	}
	p.f.Service = ""
	p.f.Detail = fmt.Sprintf("removed the %d DNAT rules of the iptables emulation of IPVS from %s nat (every service)", n, p.place(p.sandbox()))
	p.expect(WhereSandbox, "")
	return p.rules(p.sandbox(), "nat", nil, edits...)
}
