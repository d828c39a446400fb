package fault

import (
	"fmt"
	"strings"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/mesh"
)

func planNoFDB(p *planner) error {
	remote, err := p.needRemote()
	if err != nil {
		return err
	}
	mac := addrplan.MAC(remote.IP)
	fdb, err := p.k.Overlay.FDB(p.overlay(), addrplan.VXLANDev)
	if err != nil {
		return fmt.Errorf("%s: fdb: %w", p.place(p.overlay()), err)
	}
	var entry *mesh.FDBSpec
	for i := range fdb {
		if strings.EqualFold(fdb[i].MAC, mac) {
			entry = &fdb[i]
		}
	}
	if entry == nil {
		return fmt.Errorf("%s: no FDB entry for %s (%s) on %s (already broken?)", p.place(p.overlay()), mac, remote.Name, addrplan.VXLANDev)
	}
	p.f.Detail = fmt.Sprintf("%s: removed FDB %s dev %s dst %s (task %s on %s)", p.place(p.overlay()), mac, addrplan.VXLANDev, entry.Dst, remote.Name, remote.Node)
	p.expect(p.overlayName(), p.port())
	a, inv := p.action(p.overlay()), p.action(p.overlay())
	a.FDB = &FDBOp{Dev: addrplan.VXLANDev, MAC: mac, Dst: entry.Dst, Delete: true}
	inv.FDB = &FDBOp{Dev: addrplan.VXLANDev, MAC: mac, Dst: entry.Dst}
	return p.step(a, inv)
}
