package fault

import "fmt"

func planWeightZero(p *planner) error {
	s, err := p.ipvsService()
	if err != nil {
		return err
	}
	p.expect(WhereSandbox, p.port())
	p.f.Detail = fmt.Sprintf("set the %d real servers of IPVS FWM %d in %s to weight 0", len(s.Dests), s.FWMark, p.place(p.sandbox()))
	for _, d := range s.Dests {
		old, err := destOp(IPVSSetWeight, s.FWMark, d)
		if err != nil {
			return err
		}
		zero := old
		zero.Weight = 0
		if err := p.ipvs(zero, old); err != nil {
			return err
		}
	}
	return nil
}
