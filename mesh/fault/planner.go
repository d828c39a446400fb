package fault

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/mesh"
)

// The planner: one fault being injected, the places of its node, and
// its steps as they are applied.

// planner injects one fault: it reads the live state through the kernel,
// applies each change at once and records the change with its exact
// inverse in f.Steps (Break rolls the steps back when a later one fails).
type planner struct {
	st     *mesh.State
	kind   Kind
	node   mesh.NodeState
	svc    mesh.ServiceState
	task   *mesh.TaskState // the service's first task on node, if any
	remote *mesh.TaskState // the service's first task on another node, if any
	k      *Kernel
	f      *Fault
}

func newPlanner(st *mesh.State, kind Kind, req Request) (*planner, error) {
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
	// By default the first published service of the right protocol; a
	// fault that needs no published port takes a dnsrr one when there
	// is nothing else.
	for _, pass := range []bool{false, true} {
		for _, s := range st.Services {
			if !pass {
				names = append(names, s.Name)
			}
			if s.Name == req.Service || (req.Service == "" && (!s.DNSRR() || pass && kind.AnyService) && (kind.Proto == "" || s.Proto == kind.Proto)) {
				p.svc, found = s, true
				break
			}
		}
		if found {
			break
		}
	}
	switch {
	case !found && req.Service != "":
		return nil, fmt.Errorf("mesh %s: no service %q (services: %s)", st.Name, req.Service, strings.Join(names, ", "))
	case !found && kind.Proto != "":
		return nil, fmt.Errorf("mesh %s: fault %s needs a published %s service, the mesh has none (services: %s)", st.Name, kind.Name, kind.Proto, strings.Join(names, ", "))
	case !found:
		return nil, fmt.Errorf("mesh %s: fault %s needs a published service, the mesh has none (services: %s)", st.Name, kind.Name, strings.Join(names, ", "))
	case kind.Proto != "" && p.svc.Proto != kind.Proto:
		return nil, fmt.Errorf("mesh %s: fault %s needs a %s service, %s is %s", st.Name, kind.Name, kind.Proto, p.svc.Name, p.svc.Proto)
	case p.svc.DNSRR() && !kind.AnyService:
		return nil, fmt.Errorf("mesh %s: fault %s needs a published port, service %s is dnsrr (no VIP, not published)", st.Name, kind.Name, p.svc.Name)
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
func (p *planner) host() string { return p.node.Host }

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
func (p *planner) needTask() (*mesh.TaskState, error) {
	if p.task == nil {
		return nil, fmt.Errorf("service %s has no task on %s", p.svc.Name, p.node.Name)
	}
	p.f.Task = p.task.Name
	return p.task, nil
}

// needRemote returns the service's task on another node (the fault
// concerns it: it is the fault's task).
func (p *planner) needRemote() (*mesh.TaskState, error) {
	if p.remote == nil {
		return nil, fmt.Errorf("service %s has no task on a node other than %s", p.svc.Name, p.node.Name)
	}
	p.f.Task = p.remote.Name
	return p.remote, nil
}

// expect sets where doctor must report the fault.
func (p *planner) expect(netns, port string) {
	p.f.Netns, p.f.Port = netns, port
}

// step applies do and records it with its inverse.
func (p *planner) step(do Action, undo ...Action) error {
	if err := do.apply(p.k); err != nil {
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

// with is the action that applies o in netns.
func (p *planner) with(netns string, o op) Action {
	a := p.action(netns)
	switch o := o.(type) {
	case *RulesOp:
		a.Rules = o
	case *SysctlOp:
		a.Sysctl = o
	case *LinkOp:
		a.Link = o
	case *AddrOp:
		a.Addr = o
	case *RouteOp:
		a.Route = o
	case *FDBOp:
		a.FDB = o
	case *NeighOp:
		a.Neigh = o
	case *OffloadOp:
		a.Offload = o
	case *ProgramOp:
		a.Program = o
	case *ConntrackOp:
		a.Conntrack = o
	case *IPVSOp:
		a.IPVS = o
	}
	return a // another op: the action is empty, and applying it fails
}
