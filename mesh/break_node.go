package mesh

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

// Faults of links, sysctls, the overlay's FDB and the tasks' servers.

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
	old, err := p.k.Link(task.Netns, "eth0")
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

// sysctl writes key in netns and records the old value.
func (p *planner) sysctl(netns, key, value string, undo ...Action) error {
	old, err := p.k.Sysctl(netns, key)
	if err != nil {
		return fmt.Errorf("%s: sysctl %s: %w", p.place(netns), key, err)
	}
	if old == value {
		return fmt.Errorf("%s: %s is %s already (already broken?)", p.place(netns), key, value)
	}
	a, inv := p.action(netns), p.action(netns)
	a.Sysctl = &SysctlOp{Key: key, Value: value}
	inv.Sysctl = &SysctlOp{Key: key, Value: old}
	return p.step(a, append([]Action{inv}, undo...)...)
}

func planNoForward(p *planner) error {
	// Writing ip_forward sets every interface's forwarding; the undo puts
	// each back as it was.
	conf, err := p.k.SysctlGlob(p.host(), "net/ipv4/conf/*/forwarding")
	if err != nil {
		return fmt.Errorf("%s: %w", p.node.Name, err)
	}
	var undo []Action
	for _, k := range sortedKeys(conf) {
		a := p.action(p.host())
		a.Sysctl = &SysctlOp{Key: k, Value: conf[k]}
		undo = append(undo, a)
	}
	p.f.Service = ""
	p.f.Detail = p.node.Name + ": net.ipv4.ip_forward=0"
	p.expect(WhereHost, "")
	return p.sysctl(p.host(), "net/ipv4/ip_forward", "0", undo...)
}

func planRPFilter(p *planner) error {
	p.f.Service = ""
	p.f.Detail = p.place(p.sandbox()) + ": net.ipv4.conf.eth1.rp_filter=1 (strict)"
	p.expect(WhereSandbox, "")
	return p.sysctl(p.sandbox(), "net/ipv4/conf/eth1/rp_filter", "1")
}

// taskMode puts a task in mode and records the mode it had.
func (p *planner) taskMode(t *TaskState, mode string) error {
	prev, err := p.k.SetTaskMode(t.Name, mode)
	if err != nil {
		return fmt.Errorf("agent: task %s %s: %w", t.Name, mode, err)
	}
	if prev == mode {
		return fmt.Errorf("agent: task %s is in mode %s already (already broken?)", t.Name, mode)
	}
	p.done(Action{Place: "agent", Task: &TaskOp{Task: t.Name, Mode: mode}},
		Action{Place: "agent", Task: &TaskOp{Task: t.Name, Mode: prev}})
	return nil
}

func planStopTask(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	p.f.Detail = fmt.Sprintf("task %s (%s): the agent closed its %s/%d socket", task.Name, filepath.Base(task.Netns), p.svc.Proto, p.svc.Target)
	p.expect(filepath.Base(task.Netns), p.port())
	return p.taskMode(task, TaskStop)
}

func planHangTask(p *planner) error {
	var names []string
	for i := range p.svc.Tasks {
		t := &p.svc.Tasks[i]
		if err := p.taskMode(t, TaskHang); err != nil {
			return err
		}
		names = append(names, t.Name)
	}
	p.f.Detail = fmt.Sprintf("tasks %s (every node) listen on %s/%d but never answer", strings.Join(names, ", "), p.svc.Proto, p.svc.Target)
	p.expect(WhereHost, p.port())
	return nil
}

func planNoFDB(p *planner) error {
	if p.remote == nil {
		return fmt.Errorf("service %s has no task on a node other than %s", p.svc.Name, p.node.Name)
	}
	p.f.Task = p.remote.Name
	mac := addrplan.MAC(p.remote.IP)
	fdb, err := p.k.FDB(p.overlay(), addrplan.VXLANDev)
	if err != nil {
		return fmt.Errorf("%s: fdb: %w", p.place(p.overlay()), err)
	}
	var entry *FDBSpec
	for i := range fdb {
		if strings.EqualFold(fdb[i].MAC, mac) {
			entry = &fdb[i]
		}
	}
	if entry == nil {
		return fmt.Errorf("%s: no FDB entry for %s (%s) on %s (already broken?)", p.place(p.overlay()), mac, p.remote.Name, addrplan.VXLANDev)
	}
	p.f.Detail = fmt.Sprintf("%s: removed FDB %s dev %s dst %s (task %s on %s)", p.place(p.overlay()), mac, addrplan.VXLANDev, entry.Dst, p.remote.Name, p.remote.Node)
	p.expect(p.overlayName(), p.port())
	a, inv := p.action(p.overlay()), p.action(p.overlay())
	a.FDB = &FDBOp{Dev: addrplan.VXLANDev, MAC: mac, Dst: entry.Dst, Delete: true}
	inv.FDB = &FDBOp{Dev: addrplan.VXLANDev, MAC: mac, Dst: entry.Dst}
	return p.step(a, inv)
}
