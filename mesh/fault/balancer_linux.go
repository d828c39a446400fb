package fault

import (
	"fmt"

	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/mesh"
)

// balancer talks IPVS's generic netlink inside the namespace.
type balancer struct{ meshOnly }

var _ Balancer = balancer{}

// withIPVS talks IPVS inside the namespace.
func withIPVS(netns string, fn func(*ipvs.Handle) error) error {
	h, err := mesh.IPVSHandle(netns)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

func (k balancer) IPVSServices(netns string) ([]IPVSState, error) {
	if err := k.mine(netns); err != nil {
		return nil, err
	}
	var out []IPVSState
	err := withIPVS(netns, func(h *ipvs.Handle) error {
		svcs, err := h.GetServices()
		if err != nil {
			return err
		}
		for _, s := range svcs {
			if s.FWMark == 0 {
				continue
			}
			ds, err := h.GetDestinations(s)
			if err != nil {
				return fmt.Errorf("FWM %d: %w", s.FWMark, err)
			}
			st := IPVSState{FWMark: s.FWMark, Scheduler: s.SchedName}
			for _, d := range ds {
				st.Dests = append(st.Dests, IPVSDestState{Addr: d.Address.String(), Weight: d.Weight})
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

func (k balancer) IPVS(netns string, op IPVSOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withIPVS(netns, func(h *ipvs.Handle) error {
		svc := &ipvs.Service{FWMark: op.FWMark, AddressFamily: unix.AF_INET, SchedName: op.Scheduler}
		dst := &ipvs.Destination{Address: op.Addr.AsSlice(), Port: 0, Weight: op.Weight,
			ConnectionFlags: ipvs.ConnectionFlagMasq, AddressFamily: unix.AF_INET}
		switch op.Op {
		case IPVSAddService:
			return h.NewService(svc)
		case IPVSDelService:
			return h.DelService(svc)
		case IPVSAddDest:
			return h.NewDestination(svc, dst)
		case IPVSDelDest:
			return h.DelDestination(svc, dst)
		case IPVSSetWeight:
			return h.UpdateDestination(svc, dst)
		}
		return fmt.Errorf("unknown IPVS operation %q", op.Op)
	})
}
