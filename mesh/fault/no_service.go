package fault

import "fmt"

func planNoService(p *planner) error {
	s, err := p.ipvsService()
	if err != nil {
		return err
	}
	p.expect(WhereSandbox, p.port())
	p.f.Detail = fmt.Sprintf("deleted IPVS service FWM %d (%d real servers) in %s", s.FWMark, len(s.Dests), p.place(p.sandbox()))
	undo := []IPVSOp{{Op: IPVSAddService, FWMark: s.FWMark, Scheduler: s.Scheduler}}
	for _, d := range s.Dests {
		add, err := destOp(IPVSAddDest, s.FWMark, d)
		if err != nil {
			return err
		}
		undo = append(undo, add)
	}
	return p.ipvs(IPVSOp{Op: IPVSDelService, FWMark: s.FWMark}, undo...)
}
