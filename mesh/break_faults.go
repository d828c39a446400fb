package mesh

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/internal/addrplan"

	"github.com/meshtrace/meshtrace/topology"
)

// Each plan function injects one fault kind (see faultKinds). This file:
// the faults that edit iptables rules on the path.

func planDropMark(p *planner) error {
	t, err := p.table(p.sandbox(), "mangle")
	if err != nil {
		return err
	}
	c := chainOf(t, "PREROUTING")
	i, err := one(find(c, p.publishedRule("MARK")), fmt.Sprintf("MARK rule for %s in %s mangle PREROUTING", p.port(), p.place(p.sandbox())))
	if err != nil {
		return err
	}
	p.f.Detail = fmt.Sprintf("removed %q from %s mangle", c.Rules[i].Text, p.place(p.sandbox()))
	p.expect(WhereSandbox, p.port())
	return p.rules(p.sandbox(), "mangle", nil, edit{chain: c, del: []int{i}})
}

// replaceRule swaps the rule at index i of c for newSpec.
func (p *planner) replaceRule(netns, table string, c *topology.Chain, i int, newSpec string) error {
	return p.rules(netns, table, nil, edit{chain: c, del: []int{i}, at: i, ins: []string{newSpec}})
}

func planWrongRedirect(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	t, err := p.table(task.Netns, "nat")
	if err != nil {
		return err
	}
	c := chainOf(t, "PREROUTING")
	i, err := one(find(c, p.publishedRule("REDIRECT")), fmt.Sprintf("REDIRECT of %s in %s nat PREROUTING", p.port(), p.place(task.Netns)))
	if err != nil {
		return err
	}
	r := c.Rules[i]
	to := r.TargetOpt("to-ports")
	if to == nil || r.NAT == nil || r.NAT.Port != r.NAT.PortHi || int(r.NAT.Port) != p.svc.Target {
		return fmt.Errorf("%s: the REDIRECT %q does not go to the target port %d (already broken?)", p.place(task.Netns), r.Text, p.svc.Target)
	}
	wrong := p.svc.Target%65535 + 1
	newSpec := strings.Replace(spec(r), "--to-ports "+to.Arg(), "--to-ports "+strconv.Itoa(wrong), 1)
	p.f.Detail = fmt.Sprintf("task %s (%s): REDIRECT %d -> %d instead of %d", task.Name, filepath.Base(task.Netns), p.svc.Published, wrong, p.svc.Target)
	p.expect(filepath.Base(task.Netns), p.port())
	return p.replaceRule(task.Netns, "nat", c, i, newSpec)
}

// hostDNAT finds the host's DOCKER-INGRESS DNAT of the published port.
func (p *planner) hostDNAT() (*topology.Chain, int, error) {
	t, err := p.table(p.host(), "nat")
	if err != nil {
		return nil, 0, err
	}
	c := chainOf(t, "DOCKER-INGRESS")
	i, err := one(find(c, p.publishedRule("DNAT")), fmt.Sprintf("DNAT of %s in %s nat DOCKER-INGRESS", p.port(), p.node.Name))
	return c, i, err
}

func planNoDNAT(p *planner) error {
	c, i, err := p.hostDNAT()
	if err != nil {
		return err
	}
	p.f.Detail = fmt.Sprintf("removed %q from %s nat", c.Rules[i].Text, p.node.Name)
	p.expect(WhereHost, p.port())
	return p.rules(p.host(), "nat", nil, edit{chain: c, del: []int{i}})
}

// redirectDNAT points the host's DNAT of the published port at to.
func (p *planner) redirectDNAT(to netip.AddrPort) error {
	c, i, err := p.hostDNAT()
	if err != nil {
		return err
	}
	r := c.Rules[i]
	old := r.TargetOpt("to-destination").Arg()
	newSpec := strings.Replace(spec(r), "--to-destination "+old, "--to-destination "+to.String(), 1)
	p.f.Detail = fmt.Sprintf("%s: DNAT of %s to %s instead of %s", p.node.Name, p.port(), to, old)
	p.expect(WhereHost, p.port())
	return p.replaceRule(p.host(), "nat", c, i, newSpec)
}

// unownedGW is an address of docker_gwbridge's subnet that nothing on a
// node has: tasks take addresses from the bottom.
var unownedGW = netip.MustParseAddr("172.18.255.254")

func planDNATUnowned(p *planner) error {
	return p.redirectDNAT(netip.AddrPortFrom(unownedGW, uint16(p.svc.Published)))
}

func planDNATPort(p *planner) error {
	used := map[int]bool{}
	for _, s := range p.st.Services {
		used[s.Published] = true
	}
	port := p.svc.Published
	for used[port] {
		port = port%65535 + 1
	}
	return p.redirectDNAT(netip.AddrPortFrom(addrplan.SandboxGWIP, uint16(port)))
}

func planNoSNAT(p *planner) error {
	t, err := p.table(p.sandbox(), "nat")
	if err != nil {
		return err
	}
	c := chainOf(t, "POSTROUTING")
	i, err := one(find(c, func(r *topology.Rule) bool { return r.Target == "SNAT" }), "SNAT rule in "+p.place(p.sandbox())+" nat POSTROUTING")
	if err != nil {
		return err
	}
	p.f.Service = ""
	p.f.Detail = fmt.Sprintf("removed %q from %s nat (every published port)", c.Rules[i].Text, p.place(p.sandbox()))
	p.expect(WhereSandbox, "")
	return p.rules(p.sandbox(), "nat", nil, edit{chain: c, del: []int{i}})
}

func planForwardDrop(p *planner) error {
	t, err := p.table(p.host(), "filter")
	if err != nil {
		return err
	}
	fwd := t.Chain("FORWARD")
	if fwd == nil || fwd.Policy != "ACCEPT" {
		return fmt.Errorf("%s: filter FORWARD policy is not ACCEPT (already broken?)", p.node.Name)
	}
	c := chainOf(t, "DOCKER-INGRESS")
	accept := p.publishedRule("ACCEPT")
	reply := func(r *topology.Rule) bool {
		return r.Target == "ACCEPT" && r.Proto != nil && r.Proto.Value == p.svc.Proto && r.SPort() == p.svc.Published
	}
	ix := find(c, func(r *topology.Rule) bool { return accept(r) || reply(r) })
	if len(ix) == 0 {
		return fmt.Errorf("no DOCKER-INGRESS accept of %s in %s filter (already broken?)", p.port(), p.node.Name)
	}
	p.f.Detail = fmt.Sprintf("%s: filter FORWARD policy DROP, and %d DOCKER-INGRESS accept rules of %s removed", p.node.Name, len(ix), p.port())
	p.expect(WhereHost, p.port())
	return p.rules(p.host(), "filter", &policy{fwd, "DROP"}, edit{chain: c, del: ix})
}

// insertRule puts spec first in a chain of a namespace.
func (p *planner) insertRule(netns, table, chain, spec string) error {
	t, err := p.table(netns, table)
	if err != nil {
		return err
	}
	return p.rules(netns, table, nil, edit{chain: chainOf(t, chain), ins: []string{spec}})
}

func planTaskDrop(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	rule := fmt.Sprintf("-d %s/32 -p %s -m %s --dport %d -j DROP", task.IP, p.svc.Proto, p.svc.Proto, p.svc.Target)
	p.f.Detail = fmt.Sprintf("task %s (%s): filter INPUT %s", task.Name, filepath.Base(task.Netns), rule)
	p.expect(filepath.Base(task.Netns), p.port())
	return p.insertRule(task.Netns, "filter", "INPUT", rule)
}

func planBlockVXLAN(p *planner) error {
	rule := fmt.Sprintf("-p udp -m udp --dport %d -j DROP", addrplan.VXLANPort)
	p.f.Service = ""
	p.f.Detail = fmt.Sprintf("%s: filter INPUT %s", p.node.Name, rule)
	p.expect(WhereHost, "")
	return p.insertRule(p.host(), "filter", "INPUT", rule)
}
