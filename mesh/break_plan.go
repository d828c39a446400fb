package mesh

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/internal/addrplan"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

// planner injects one fault: it reads the live state through the kernel,
// applies each change at once and records the change with its exact
// inverse in f.Steps (Break rolls the steps back when a later one fails).
type planner struct {
	st     *State
	kind   FaultKind
	node   NodeState
	svc    ServiceState
	task   *TaskState // the service's first task on node, if any
	remote *TaskState // the service's first task on another node, if any
	k      FaultKernel
	f      *Fault
}

func newPlanner(st *State, kind FaultKind, req BreakRequest) (*planner, error) {
	if kind.LB != "" && kind.LB != st.LB {
		return nil, fmt.Errorf("mesh %s: fault %s needs --lb %s, this mesh balances with %s", st.Name, kind.Name, kind.LB, st.LB)
	}
	p := &planner{st: st, kind: kind}
	nodeName := req.Node
	if nodeName == "" && len(st.Nodes) > 0 {
		nodeName = st.Nodes[0].Name
	}
	found := false
	var names []string
	for _, n := range st.Nodes {
		names = append(names, n.Name)
		if n.Name == nodeName {
			p.node, found = n, true
		}
	}
	if !found {
		return nil, fmt.Errorf("mesh %s: no node %q (nodes: %s)", st.Name, nodeName, strings.Join(names, ", "))
	}
	found = false
	names = nil
	for _, s := range st.Services {
		names = append(names, s.Name)
		if (req.Service == "" && (kind.Proto == "" || s.Proto == kind.Proto)) || s.Name == req.Service {
			p.svc, found = s, true
			break
		}
	}
	switch {
	case !found && req.Service != "":
		return nil, fmt.Errorf("mesh %s: no service %q (services: %s)", st.Name, req.Service, strings.Join(names, ", "))
	case !found:
		return nil, fmt.Errorf("mesh %s: fault %s needs a %s service, the mesh has none (services: %s)", st.Name, kind.Name, kind.Proto, strings.Join(names, ", "))
	case kind.Proto != "" && p.svc.Proto != kind.Proto:
		return nil, fmt.Errorf("mesh %s: fault %s needs a %s service, %s is %s", st.Name, kind.Name, kind.Proto, p.svc.Name, p.svc.Proto)
	}
	for i := range p.svc.Tasks {
		t := &p.svc.Tasks[i]
		if t.Node == p.node.Name && p.task == nil {
			p.task = t
		}
		if t.Node != p.node.Name && p.remote == nil {
			p.remote = t
		}
	}
	p.f = &Fault{Kind: kind.Name, Node: p.node.Name, Service: p.svc.Name, Code: kind.Code, Steps: []Step{}}
	return p, nil
}

// Namespaces of the node.
func (p *planner) host() string    { return p.node.Host }
func (p *planner) sandbox() string { return filepath.Join(p.node.NetnsDir, addrplan.SandboxName) }
func (p *planner) overlayName() string {
	return "1-" + p.st.OverlayID
}
func (p *planner) overlay() string { return filepath.Join(p.node.NetnsDir, p.overlayName()) }

func (p *planner) place(netns string) string {
	if netns == p.node.Host {
		return p.node.Name
	}
	if netns == p.st.Client.Netns {
		return "client"
	}
	if rel, err := filepath.Rel(p.st.Dir, netns); err == nil && !strings.HasPrefix(rel, "..") {
		return strings.Replace(rel, "/netns/", "/", 1)
	}
	return netns
}

// port is the service's published port as doctor names it.
func (p *planner) port() string { return fmt.Sprintf("%s/%d", p.svc.Proto, p.svc.Published) }

// needTask returns the service's task on this node.
func (p *planner) needTask() (*TaskState, error) {
	if p.task == nil {
		return nil, fmt.Errorf("service %s has no task on %s", p.svc.Name, p.node.Name)
	}
	p.f.Task = p.task.Name
	return p.task, nil
}

// expect sets where doctor must report the fault.
func (p *planner) expect(netns, port string) {
	p.f.Netns, p.f.Port = netns, port
}

// step applies do and records it with its inverse.
func (p *planner) step(do Action, undo ...Action) error {
	if err := apply(p.k, do); err != nil {
		return fmt.Errorf("%s: %w", do, err)
	}
	p.done(do, undo...)
	return nil
}

// done records a change already made.
func (p *planner) done(do Action, undo ...Action) {
	p.f.Steps = append(p.f.Steps, Step{Do: do, Undo: undo})
}

func (p *planner) action(netns string) Action {
	return Action{Netns: netns, Place: p.place(netns)}
}

// table reads one iptables table of a namespace; a table that does not
// exist there reads as empty.
func (p *planner) table(netns, table string) (*topology.Table, error) {
	out, err := p.k.SaveRules(netns, table)
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
		do = append(do, "-D "+name+" "+spec(e.chain.Rules[i]))
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
		undo = append(undo, fmt.Sprintf("-I %s %d %s", name, i+1, spec(e.chain.Rules[i])))
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
	for i, r := range c.Rules {
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
		return r.Target == target && r.Proto != nil && !r.Proto.Neg && r.Proto.Value == p.svc.Proto && r.DPort() == p.svc.Published
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

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
