package fault

import (
	"fmt"
	"net/netip"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// Helpers of the faults of the load-balancing stage: the iptables
// emulation of IPVS, or IPVS itself, in the ingress sandbox.

// emulation returns the sandbox's nat table and, per chain that has them,
// the indexes of the emulation's DNAT rules for mark.
func (p *planner) emulation(mark uint32) (*topology.Table, map[string][]int, error) {
	t, err := p.table(p.sandbox(), "nat")
	if err != nil {
		return nil, nil, err
	}
	idx := map[string][]int{}
	for _, name := range []string{"PREROUTING", "OUTPUT"} {
		if ix := find(chainOf(t, name), isEmulationOf(mark)); len(ix) > 0 {
			idx[name] = ix
		}
	}
	if len(idx) == 0 {
		return nil, nil, fmt.Errorf("no emulated IPVS rules for fwmark %#x in %s nat (already broken? see `meshtrace mesh repair`)", mark, p.place(p.sandbox()))
	}
	return t, idx, nil
}

// isEmulationOf matches a rule of the iptables emulation of IPVS FWM
// mark, as topology recognises them.
func isEmulationOf(mark uint32) func(*topology.Rule) bool {
	return func(r *topology.Rule) bool {
		m, ok := topology.EmulationMark(r)
		return ok && m == mark
	}
}

// emulationBackends are the DNAT targets of the emulation rules at idx, in
// order.
func emulationBackends(c *topology.Chain, idx []int) []netip.Addr {
	var out []netip.Addr
	for _, i := range idx {
		if n := c.Rule(i).NAT; n != nil {
			out = append(out, n.Addr)
		}
	}
	return out
}

// setEmulation replaces the emulation rules of the service's mark in
// every chain that has them by round robin over backends (none: the
// service has no real servers left).
func (p *planner) setEmulation(backends func(old []netip.Addr) []netip.Addr) error {
	t, idx, err := p.emulation(p.svc.FWMark)
	if err != nil {
		return err
	}
	var edits []edit
	for _, name := range []string{"PREROUTING", "OUTPUT"} {
		ix, ok := idx[name]
		if !ok {
			continue
		}
		c := chainOf(t, name)
		edits = append(edits, edit{chain: c, del: ix, at: ix[0], ins: dockerrules.EmulationSpecs(p.svc.FWMark, backends(emulationBackends(c, ix)))})
	}
	return p.rules(p.sandbox(), "nat", nil, edits...)
}

// ipvsService reads the sandbox's IPVS service of the service's mark.
func (p *planner) ipvsService() (IPVSState, error) {
	svcs, err := p.k.LB.IPVSServices(p.sandbox())
	if err != nil {
		return IPVSState{}, fmt.Errorf("%s: %w", p.place(p.sandbox()), err)
	}
	for _, s := range svcs {
		if s.FWMark == p.svc.FWMark {
			return s, nil
		}
	}
	return IPVSState{}, fmt.Errorf("no IPVS service FWM %d in %s (already broken? see `meshtrace mesh repair`)", p.svc.FWMark, p.place(p.sandbox()))
}

func (p *planner) ipvs(op IPVSOp, undo ...IPVSOp) error {
	a := p.action(p.sandbox())
	a.IPVS = &op
	var inv []Action
	for _, u := range undo {
		b := p.action(p.sandbox())
		b.IPVS = &u
		inv = append(inv, b)
	}
	return p.step(a, inv...)
}

func destOp(op string, mark uint32, d IPVSDestState) (IPVSOp, error) {
	a, err := netip.ParseAddr(d.Addr)
	if err != nil {
		return IPVSOp{}, fmt.Errorf("IPVS FWM %d real server %q: %w", mark, d.Addr, err)
	}
	return IPVSOp{Op: op, FWMark: mark, Addr: a, Weight: d.Weight}, nil
}
