package fault

import (
	"fmt"
	"net/netip"

	"github.com/meshtrace/meshtrace/mesh"
)

func planNoBackends(p *planner) error {
	p.expect(WhereSandbox, p.port())
	if p.st.LB != mesh.LBIPVS {
		p.f.Detail = fmt.Sprintf("removed every emulated real server (DNAT) of fwmark %#x from %s nat", p.svc.FWMark, p.place(p.sandbox()))
		return p.setEmulation(func([]netip.Addr) []netip.Addr { return nil })
	}
	s, err := p.ipvsService()
	if err != nil {
		return err
	}
	if len(s.Dests) == 0 {
		return fmt.Errorf("IPVS FWM %d has no real servers already", s.FWMark)
	}
	p.f.Detail = fmt.Sprintf("removed the %d real servers of IPVS FWM %d in %s", len(s.Dests), s.FWMark, p.place(p.sandbox()))
	// Last first: repair, undoing the newest step first, adds them back in
	// their order (the order IPVS schedules them in).
	for i := len(s.Dests) - 1; i >= 0; i-- {
		d := s.Dests[i]
		del, err := destOp(IPVSDelDest, s.FWMark, d)
		if err != nil {
			return err
		}
		add := del
		add.Op = IPVSAddDest
		if err := p.ipvs(del, add); err != nil {
			return err
		}
	}
	return nil
}
