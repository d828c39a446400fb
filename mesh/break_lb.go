package mesh

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"syscall"

	"github.com/meshtrace/meshtrace/internal/addrplan"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// Faults of the load-balancing stage: the iptables emulation of IPVS, or
// IPVS itself, in the ingress sandbox.

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

// isEmulationOf matches a DNAT of the iptables emulation of IPVS FWM mark.
func isEmulationOf(mark uint32) func(*topology.Rule) bool {
	return func(r *topology.Rule) bool {
		if r.Target != "DNAT" {
			return false
		}
		o := r.Match("mark").Opt("mark")
		return o != nil && o.Mark != nil && o.Mark.Value == mark
	}
}

// emulationBackends are the DNAT targets of the emulation rules at idx, in
// order.
func emulationBackends(c *topology.Chain, idx []int) []netip.Addr {
	var out []netip.Addr
	for _, i := range idx {
		if n := c.Rules[i].NAT; n != nil {
			out = append(out, n.Addr)
		}
	}
	return out
}

// emulationSpecs renders round robin over backends for mark the way the
// mesh writes it (dockerrules): rule i takes every (n-i)th packet reaching
// it, the last takes the rest.
func emulationSpecs(mark uint32, backends []netip.Addr) []string {
	var out []string
	for i, be := range backends {
		stat := ""
		if rest := len(backends) - i; rest > 1 {
			stat = fmt.Sprintf(" -m statistic --mode nth --every %d --packet 0", rest)
		}
		out = append(out, fmt.Sprintf("-m mark --mark %#x%s -m comment --comment %q -j DNAT --to-destination %s", mark, stat, dockerrules.EmulationComment, be))
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
		edits = append(edits, edit{chain: c, del: ix, at: ix[0], ins: emulationSpecs(p.svc.FWMark, backends(emulationBackends(c, ix)))})
	}
	return p.rules(p.sandbox(), "nat", nil, edits...)
}

// ipvsService reads the sandbox's IPVS service of the service's mark.
func (p *planner) ipvsService() (IPVSState, error) {
	svcs, err := p.k.IPVSServices(p.sandbox())
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

func planNoBackends(p *planner) error {
	p.expect(WhereSandbox, p.port())
	if p.st.LB != LBIPVS {
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

// unusedIngressAddr is an address of the ingress network that no sandbox,
// VIP or task of the mesh has: the highest free one.
func (st *State) unusedIngressAddr() (netip.Addr, error) {
	used := map[netip.Addr]bool{addrplan.IngressGW: true}
	for _, n := range st.Nodes {
		used[n.SandboxIP] = true
	}
	for _, s := range st.Services {
		used[s.VIP] = true
		for _, t := range s.Tasks {
			used[t.IP] = true
		}
	}
	last := addrplan.IngressSubnet.Masked().Addr()
	for range addrplan.IngressHosts() {
		last = last.Next()
	}
	for a := last; addrplan.IngressSubnet.Contains(a) && a != addrplan.IngressSubnet.Masked().Addr(); a = a.Prev() {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address left on the ingress network %s", addrplan.IngressSubnet)
}

func planStaleBackend(p *planner) error {
	stale, err := p.st.unusedIngressAddr()
	if err != nil {
		return err
	}
	p.expect(WhereSandbox, p.port())
	p.f.Detail = fmt.Sprintf("added real server %s (no task has it) to fwmark %#x in %s", stale, p.svc.FWMark, p.place(p.sandbox()))
	if p.st.LB != LBIPVS {
		return p.setEmulation(func(old []netip.Addr) []netip.Addr {
			return append(append([]netip.Addr(nil), old...), stale)
		})
	}
	if _, err := p.ipvsService(); err != nil {
		return err
	}
	add := IPVSOp{Op: IPVSAddDest, FWMark: p.svc.FWMark, Addr: stale, Weight: 1}
	del := add
	del.Op = IPVSDelDest
	return p.ipvs(add, del)
}

func planStaleConntrack(p *planner) error {
	if len(p.svc.Tasks) < 2 {
		return fmt.Errorf("service %s has %d task: a stale entry needs one task to take out and one to keep", p.svc.Name, len(p.svc.Tasks))
	}
	// A client port of its own (below the range mesh.Ask walks), so the
	// flow is the only one from it; another try if it is taken.
	addr := netip.AddrPortFrom(p.node.IP, uint16(p.svc.Published)).String()
	var (
		sport  int
		answer string
		err    error
	)
	for range 3 {
		sport = 20000 + rand.IntN(10000)
		if answer, err = p.k.Send(p.st.Client.Netns, p.svc.Proto, addr, sport); !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	answered, _, ok := p.st.Task(answer)
	if !ok {
		return fmt.Errorf("client: %s answered as %q, not a task of the mesh", addr, answer)
	}
	// The datagram left entries in the host, the sandbox and the task:
	// the undo deletes them.
	send := Action{Netns: p.st.Client.Netns, Place: "client", Send: &SendOp{Proto: p.svc.Proto, Addr: addr, SPort: sport, Answer: answer}}
	var undo []Action
	for _, ns := range []string{p.host(), p.sandbox(), answered.Netns} {
		a := Action{Netns: ns, Place: p.place(ns), Conntrack: &ConntrackOp{Proto: p.svc.Proto, SPort: sport}}
		undo = append(undo, a)
	}
	p.done(send, undo...)
	p.f.ClientPort = sport
	p.f.Task = answered.Name
	p.f.Detail = fmt.Sprintf("client port %d -> %s answered by %s; then %s was taken out of fwmark %#x in %s", sport, addr, answered.Name, answered.Name, p.svc.FWMark, p.place(p.sandbox()))
	p.expect(WhereSandbox, p.port())
	if p.st.LB != LBIPVS {
		var takeOut error
		err := p.setEmulation(func(old []netip.Addr) []netip.Addr {
			var keep []netip.Addr
			for _, b := range old {
				if b != answered.IP {
					keep = append(keep, b)
				}
			}
			if len(keep) == len(old) || len(keep) == 0 {
				takeOut = fmt.Errorf("%s (%s) is not one of several emulated real servers %v of fwmark %#x", answered.Name, answered.IP, old, p.svc.FWMark)
				return old
			}
			return keep
		})
		if err == nil {
			err = takeOut
		}
		return err
	}
	s, err := p.ipvsService()
	if err != nil {
		return err
	}
	for _, d := range s.Dests {
		if d.Addr == answered.IP.String() {
			del, err := destOp(IPVSDelDest, s.FWMark, d)
			if err != nil {
				return err
			}
			add := del
			add.Op = IPVSAddDest
			return p.ipvs(del, add)
		}
	}
	return fmt.Errorf("%s (%s) is not a real server of IPVS FWM %d", answered.Name, answered.IP, s.FWMark)
}

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
