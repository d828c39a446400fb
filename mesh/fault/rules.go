package fault

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

// Helpers of the faults that edit iptables rules: read a table, find
// rules, and change a chain as one step with its exact inverse.

// table reads one iptables table of a namespace; a table that does not
// exist there reads as empty.
func (p *planner) table(netns, table string) (*topology.Table, error) {
	return p.tableOf(p.k.Firewall, netns, table)
}

// tableOf reads one table of a namespace from one iptables backend.
func (p *planner) tableOf(backend Firewall, netns, table string) (*topology.Table, error) {
	out, err := backend.SaveRules(netns, table)
	if err != nil {
		return nil, fmt.Errorf("%s: iptables-save -t %s: %w", p.place(netns), table, err)
	}
	fw, err := parse.IptablesSave(p.place(netns)+"/iptables-save", strings.NewReader(out))
	if err != nil {
		return nil, err
	}
	if t := fw.Table(table); t != nil {
		return t, nil
	}
	return &topology.Table{Name: table}, nil
}

// chain returns a chain's rules (nil when the chain does not exist).
func chainOf(t *topology.Table, name string) *topology.Chain {
	if c := t.Chain(name); c != nil {
		return c
	}
	return &topology.Chain{Name: name}
}

// spec is a rule without its "-A CHAIN ".
func spec(r *topology.Rule) string {
	s, _ := strings.CutPrefix(r.Text, "-A "+r.Chain+" ")
	return s
}

// edit is a change to one chain: delete the rules at indexes del, then
// insert specs at index at (counted after the deletions).
type edit struct {
	chain *topology.Chain
	del   []int
	at    int
	ins   []string
}

// lines returns the iptables-restore lines of the edit and of its exact
// inverse: the inserted rules deleted, the deleted ones put back at their
// old places (in increasing order, so each lands where it was).
func (e edit) lines() (do, undo []string) {
	name := e.chain.Name
	for _, i := range e.del {
		do = append(do, "-D "+name+" "+spec(e.chain.Rule(i)))
	}
	for j, s := range e.ins {
		do = append(do, fmt.Sprintf("-I %s %d %s", name, e.at+j+1, s))
	}
	for _, s := range e.ins {
		undo = append(undo, "-D "+name+" "+s)
	}
	del := append([]int(nil), e.del...)
	for i := 1; i < len(del); i++ { // insertion sort: a handful of indexes
		for j := i; j > 0 && del[j] < del[j-1]; j-- {
			del[j], del[j-1] = del[j-1], del[j]
		}
	}
	for _, i := range del {
		undo = append(undo, fmt.Sprintf("-I %s %d %s", name, i+1, spec(e.chain.Rule(i))))
	}
	return do, undo
}

// policy is a new policy for a built-in chain.
type policy struct {
	chain *topology.Chain
	to    string
}

// rules applies edits (and a policy change, when pol is not nil) to one
// table of a namespace as one step. Policy lines come first, as in
// iptables-save.
func (p *planner) rules(netns, table string, pol *policy, edits ...edit) error {
	var do, undo []string
	if pol != nil {
		do = append(do, fmt.Sprintf(":%s %s [0:0]", pol.chain.Name, pol.to))
		undo = append(undo, fmt.Sprintf(":%s %s [0:0]", pol.chain.Name, pol.chain.Policy))
	}
	var undoRules []string
	for _, e := range edits {
		d, u := e.lines()
		do = append(do, d...)
		undoRules = append(u, undoRules...)
	}
	undo = append(undo, undoRules...)
	a, inv := p.action(netns), p.action(netns)
	a.Rules = &RulesOp{Table: table, Lines: do}
	inv.Rules = &RulesOp{Table: table, Lines: undo}
	return p.step(a, inv)
}

// find returns the indexes of the chain's rules that match.
func find(c *topology.Chain, match func(*topology.Rule) bool) []int {
	var out []int
	for i, r := range c.All() {
		if match(r) {
			out = append(out, i)
		}
	}
	return out
}

// publishedRule matches a rule of the service's protocol and published
// port with the given target.
func (p *planner) publishedRule(target string) func(*topology.Rule) bool {
	return func(r *topology.Rule) bool {
		return r.Target == target && r.ProtoIs(p.svc.Proto) && r.DPort() == p.svc.Published
	}
}

// one returns the single index, or an error naming what is missing.
func one(idx []int, what string) (int, error) {
	switch len(idx) {
	case 0:
		return 0, fmt.Errorf("no %s (already broken? see `meshtrace mesh repair`)", what)
	case 1:
		return idx[0], nil
	}
	return 0, fmt.Errorf("%d rules are %s, expected one", len(idx), what)
}

// replaceRule swaps the rule at index i of c for newSpec.
func (p *planner) replaceRule(netns, table string, c *topology.Chain, i int, newSpec string) error {
	return p.rules(netns, table, nil, edit{chain: c, del: []int{i}, at: i, ins: []string{newSpec}})
}

// insertRule puts spec first in a chain of a namespace.
func (p *planner) insertRule(netns, table, chain, spec string) error {
	t, err := p.table(netns, table)
	if err != nil {
		return err
	}
	return p.rules(netns, table, nil, edit{chain: chainOf(t, chain), ins: []string{spec}})
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

// redirectDNAT points the host's DNAT of the published port at to.
func (p *planner) redirectDNAT(to netip.AddrPort) error {
	c, i, err := p.hostDNAT()
	if err != nil {
		return err
	}
	r := c.Rule(i)
	if r.NAT == nil || !r.NAT.Addr.IsValid() {
		return fmt.Errorf("%s: the DNAT %q has no address to change", p.node.Name, r.Text)
	}
	old := topology.Endpoint{Addr: r.NAT.Addr, Port: r.NAT.Port}
	newSpec := spec(r.WithTargetArgs("to-destination", to.String()))
	p.f.Detail = fmt.Sprintf("%s: DNAT of %s to %s instead of %s", p.node.Name, p.port(), to, old)
	p.expect(WhereHost, p.port())
	return p.replaceRule(p.host(), "nat", c, i, newSpec)
}
