package topology

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// TaskNetns finds a task's namespace by what an operator calls the task:
// its namespace's name ("09cd513d96a2"), its task name ("web.1"), its
// container's full name ("web.1.n4wxsk79nr8v") or its container's ID (12
// characters or more). A name that fits several tasks, or none, is an
// error that lists the known tasks.
func TaskNetns(m *Model, name string) (*Namespace, error) {
	if ns := m.Lookup(name); ns != nil {
		return ns, nil
	}
	var found []*Namespace
	add := func(ns *Namespace) {
		for _, f := range found {
			if f == ns {
				return
			}
		}
		found = append(found, ns)
	}
	for _, ns := range m.Namespaces {
		if d := ns.Docker; d != nil && name != "" && (d.Task == name || d.Container == name) {
			add(ns)
		}
	}
	if d := m.Docker; d != nil && len(name) >= 12 {
		for _, c := range d.Containers {
			if strings.HasPrefix(c.ID, name) && c.SandboxKey != "" {
				if ns := m.Lookup(path.Base(c.SandboxKey)); ns != nil {
					add(ns)
				}
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("no task or namespace %q: %s", name, knownTasks(m))
	}
	var names []string
	for _, ns := range found {
		names = append(names, ns.Name)
	}
	return nil, fmt.Errorf("%q names several tasks' namespaces (%s): give one of them", name, strings.Join(names, ", "))
}

// knownTasks lists the tasks a name can give, or says why there are none.
func knownTasks(m *Model) string {
	var tasks []string
	for _, ns := range m.Namespaces {
		if d := ns.Docker; d != nil && d.Container != "" {
			t := d.Task
			if t == "" {
				t = d.Container
			}
			tasks = append(tasks, fmt.Sprintf("%s (netns %s)", t, ns.Name))
		}
	}
	if len(tasks) == 0 {
		why := "Docker's metadata names no container here"
		switch {
		case m.Docker == nil:
			why = "Docker's metadata was not collected"
		case m.Docker.Containers == nil:
			why = "Docker's containers were not collected (docker inspect)"
		}
		var names []string
		for _, ns := range m.Namespaces {
			names = append(names, ns.Name)
		}
		return why + ": name a namespace (" + strings.Join(names, ", ") + ")"
	}
	sort.Strings(tasks)
	return "known tasks: " + strings.Join(tasks, ", ")
}
