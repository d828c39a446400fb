package fault

import (
	"fmt"
	"sort"

	"github.com/meshtrace/meshtrace/mesh"
)

// Helpers of the faults that write sysctls or put the agent's task
// servers in a mode.

// sysctl writes key in netns and records the old value.
func (p *planner) sysctl(netns, key, value string, undo ...Action) error {
	old, err := p.k.Sysctls.Sysctl(netns, key)
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

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// taskMode puts a task in mode and records the mode it had.
func (p *planner) taskMode(t *mesh.TaskState, mode string) error { return p.serverMode(t, "", mode) }

// serverMode puts one of a task's servers (its own, "", or ServerDNS) in
// mode and records the mode it had.
func (p *planner) serverMode(t *mesh.TaskState, server, mode string) error {
	set := p.k.Tasks.SetTaskMode
	what := "task " + t.Name
	if server == ServerDNS {
		set, what = p.k.Tasks.SetResolverMode, "task "+t.Name+"'s embedded DNS server"
	}
	prev, err := set(t.Name, mode)
	if err != nil {
		return fmt.Errorf("agent: %s %s: %w", what, mode, err)
	}
	if prev == mode {
		return fmt.Errorf("agent: %s is in mode %s already (already broken?)", what, mode)
	}
	p.done(Action{Place: "agent", Task: &TaskOp{Task: t.Name, Server: server, Mode: mode}},
		Action{Place: "agent", Task: &TaskOp{Task: t.Name, Server: server, Mode: prev}})
	return nil
}
