package fault

import (
	"fmt"
	"path/filepath"
)

// MTU fault values: a full Ethernet MTU, and one segment per packet so
// the kernel hands the veth real 1500-byte frames (the way a NIC that
// segments at its MTU puts them on the wire) instead of GSO super-packets
// that slip past the overlay's MTU checks and get re-segmented or PMTU-
// corrected later.
const (
	faultMTU        = 1500
	faultGSOMaxSegs = 1
)

func planMTU(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	old, err := p.k.Links.Link(task.Netns, "eth0")
	if err != nil {
		return fmt.Errorf("%s: link eth0: %w", p.place(task.Netns), err)
	}
	if old.MTU >= faultMTU {
		return fmt.Errorf("%s: eth0 has MTU %d already (already broken?)", p.place(task.Netns), old.MTU)
	}
	p.f.Detail = fmt.Sprintf("task %s (%s): ingress leg eth0 MTU %d -> %d, gso_max_segs %d -> %d", task.Name,
		filepath.Base(task.Netns), old.MTU, faultMTU, old.GSOMaxSegs, faultGSOMaxSegs)
	p.expect(filepath.Base(task.Netns), "")
	a, inv := p.action(task.Netns), p.action(task.Netns)
	a.Link = &LinkOp{Name: "eth0", MTU: faultMTU, GSOMaxSegs: faultGSOMaxSegs}
	inv.Link = &old
	return p.step(a, inv)
}
