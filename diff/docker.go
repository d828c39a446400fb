package diff

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// taskDiff holds the Docker task changes until Compare files each under
// its namespace.
type taskDiff struct {
	changes     []Change
	notCompared []NotCompared
}

// task is what the two readings say of one task slot ("web.2").
type task struct {
	service   string
	nodes     []string              // the nodes the swarm networks place it on
	addrs     map[string]netip.Addr // network -> address
	container string                // its container here, with the task's id ("web.2.x7…")
	netns     string                // its sandbox's name here
}

// taskSources says where a model's tasks can be read from: the swarm
// networks' task lists (`docker network inspect --verbose`, every node's)
// and the containers (this node's).
func taskSources(m *topology.Model) (nets, conts bool) {
	if m.Docker == nil {
		return false, false
	}
	for _, n := range m.Docker.Networks {
		if n.Tasks != nil {
			nets = true
		}
	}
	return nets, m.Docker.Containers != nil
}

// tasks reads m's tasks from the sources asked for.
func tasks(m *topology.Model, nets, conts bool) map[string]*task {
	out := map[string]*task{}
	at := func(name, service string) *task {
		t := out[name]
		if t == nil {
			t = &task{service: service, addrs: map[string]netip.Addr{}}
			out[name] = t
		}
		return t
	}
	if nets {
		for _, n := range m.Docker.Networks {
			for _, x := range n.Tasks {
				t := at(x.Name, x.Service)
				if x.IP.IsValid() {
					t.addrs[n.Name] = x.IP
				}
				if x.Node.IsValid() && !slices.Contains(t.nodes, x.Node.String()) {
					t.nodes = append(t.nodes, x.Node.String())
				}
			}
		}
	}
	if conts {
		for _, c := range m.Docker.Containers {
			if c.Task == "" {
				continue
			}
			t := at(c.Task, c.Service)
			t.container = c.Name
			if c.SandboxKey != "" {
				t.netns = path.Base(c.SandboxKey)
			}
			for net, ip := range c.Networks {
				if ip.IsValid() {
					t.addrs[net] = ip
				}
			}
		}
	}
	for _, t := range out {
		sort.Strings(t.nodes)
	}
	return out
}

func (t *task) where() string {
	var parts []string
	if len(t.nodes) > 0 {
		parts = append(parts, "node "+strings.Join(t.nodes, ", "))
	}
	if t.container != "" {
		parts = append(parts, "container "+t.container)
	}
	if s := t.addrLine(); s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func (t *task) addrLine() string {
	var parts []string
	for _, n := range sortedKeys(t.addrs) {
		parts = append(parts, t.addrs[n].String()+" on "+n)
	}
	return strings.Join(parts, ", ")
}

// compareTasks compares the Docker tasks of a and b: added, removed,
// moved to another node, replaced by a new task in the same slot (another
// container), readdressed. Only the sources both sides have are read.
func compareTasks(a, b *topology.Model) *taskDiff {
	d := &taskDiff{}
	netsA, contsA := taskSources(a)
	netsB, contsB := taskSources(b)
	nets, conts := netsA && netsB, contsA && contsB
	if !nets {
		d.notCompared = append(d.notCompared, NotCompared{Area: AreaTasks + " (swarm networks' task lists)", Reason: notCollectedIn(netsA, netsB)})
	}
	if !conts {
		d.notCompared = append(d.notCompared, NotCompared{Area: AreaTasks + " (this node's containers)", Reason: notCollectedIn(contsA, contsB)})
	}
	if !nets && !conts {
		return d
	}
	ta, tb := tasks(a, nets, conts), tasks(b, nets, conts)
	add := func(t *task, c Change) {
		c.Netns, c.Kind = t.netns, TaskChanged
		d.changes = append(d.changes, c)
	}
	for _, name := range sortedKeys(tb) {
		x, p := tb[name], ta[name]
		if p == nil {
			add(x, Change{Op: Added, Object: name, After: x.where(), Summary: fmt.Sprintf("task %s (%s) added: %s", name, x.service, x.where())})
			continue
		}
		if nets && !slices.Equal(p.nodes, x.nodes) {
			add(x, Change{Op: Moved, Object: name, Field: "node", Before: strings.Join(p.nodes, ", "), After: strings.Join(x.nodes, ", "),
				Summary: fmt.Sprintf("task %s moved from node %s to node %s", name, orNone(strings.Join(p.nodes, ", ")), orNone(strings.Join(x.nodes, ", ")))})
		}
		if conts && p.container != x.container {
			add(x, Change{Op: Changed, Object: name, Field: "container", Before: p.container, After: x.container,
				Summary: fmt.Sprintf("task %s: container %s -> %s", name, orNone(p.container), orNone(x.container))})
		}
		if pa, xa := p.addrLine(), x.addrLine(); pa != xa {
			add(x, Change{Op: Changed, Object: name, Field: "address", Before: pa, After: xa,
				Summary: fmt.Sprintf("task %s: %s -> %s", name, orNone(pa), orNone(xa))})
		}
	}
	for _, name := range sortedKeys(ta) {
		if p := ta[name]; tb[name] == nil {
			add(p, Change{Op: Removed, Object: name, Before: p.where(), Summary: fmt.Sprintf("task %s (%s) removed: it was %s", name, p.service, p.where())})
		}
	}
	return d
}
