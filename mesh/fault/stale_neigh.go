package fault

import (
	"fmt"
	"strings"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

// planStaleNeigh points the overlay's permanent neighbour of a remote
// task at the MAC of an endpoint that is gone (as when the address was
// handed to a new container and the entry was not updated). The VXLAN
// device's ARP proxy answers with it, so the node sends that task's
// frames to a MAC no FDB entry knows.
func planStaleNeigh(p *planner) error {
	remote, err := p.needRemote()
	if err != nil {
		return err
	}
	ip, good := remote.IP, addrplan.MAC(remote.IP)
	have, err := p.k.Overlay.Neigh(p.overlay(), addrplan.VXLANDev, ip)
	if err != nil {
		return fmt.Errorf("%s: neighbour %s: %w", p.place(p.overlay()), ip, err)
	}
	if !strings.EqualFold(have, good) {
		return fmt.Errorf("%s: neighbour %s is %q, not the endpoint's %s (already broken?)", p.place(p.overlay()), ip, have, good)
	}
	gone, err := unusedIngressAddr(p.st)
	if err != nil {
		return err
	}
	stale := addrplan.MAC(gone)
	p.f.Detail = fmt.Sprintf("%s: permanent neighbour %s dev %s lladdr %s (task %s on %s is %s)",
		p.place(p.overlay()), ip, addrplan.VXLANDev, stale, remote.Name, remote.Node, good)
	p.expect(p.overlayName(), "")
	// The sandbox may have learned the right MAC already: it forgets it
	// (and asks again) after the change and again after the repair.
	forget := p.with(p.sandbox(), &NeighOp{Dev: "eth0", IP: ip, Forget: true})
	set, restore := &NeighOp{Dev: addrplan.VXLANDev, IP: ip, MAC: stale}, &NeighOp{Dev: addrplan.VXLANDev, IP: ip, MAC: have}
	if err := p.step(p.with(p.overlay(), set), p.with(p.overlay(), restore), forget); err != nil {
		return err
	}
	return p.step(forget)
}
