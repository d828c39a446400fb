package fault

import (
	"fmt"
	"net/netip"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/mesh"
)

// unusedIngressAddr is an address of the ingress network that no sandbox,
// VIP or task of the mesh has: the highest free one.
func unusedIngressAddr(st *mesh.State) (netip.Addr, error) {
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
	for i := addrplan.IngressHosts(); i > 0; i-- {
		if a := addrplan.Nth(addrplan.IngressSubnet, i); !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address left on the ingress network %s", addrplan.IngressSubnet)
}

func planStaleBackend(p *planner) error {
	stale, err := unusedIngressAddr(p.st)
	if err != nil {
		return err
	}
	p.expect(WhereSandbox, p.port())
	p.f.Detail = fmt.Sprintf("added real server %s (no task has it) to fwmark %#x in %s", stale, p.svc.FWMark, p.place(p.sandbox()))
	if p.st.LB != mesh.LBIPVS {
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
