package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// ServiceQuery asks for a service's paths by name (`path --service NAME`):
// without From, the paths of its published ports; with From (a task, as
// TaskNetns takes it), the east-west path from that task to the service's
// VIP. Proto and Port narrow it ("" and 0: every one the service has); an
// east-west Port is the one called, taken from the service otherwise.
type ServiceQuery struct {
	Service string
	From    string
	Proto   string
	Port    int
}

// ServiceQueries resolves a service by name into the path queries it
// stands for, from Docker's metadata (live, a bundle's docker/*.json, or
// the built-in mesh's state): one per published port, or one per target
// port of the VIP's path from the task. An unknown service or task is an
// error listing the known ones; a service that has no such port or VIP
// says so.
func ServiceQueries(m *Model, sq ServiceQuery) ([]Query, error) {
	s, err := FindService(m, sq.Service)
	if err != nil {
		return nil, err
	}
	if sq.From == "" {
		return publishedQueries(s, sq)
	}
	from, err := TaskNetns(m, sq.From)
	if err != nil {
		return nil, err
	}
	vip, err := serviceVIPFrom(m, s, from)
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, pp := range servicePorts(m, s, sq) {
		out = append(out, Query{Proto: pp.Proto, Port: pp.Port, VIP: vip, Netns: from.Name})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("service %s: no target port known%s: give --port", s.Name, protoWord(sq.Proto))
	}
	return out, nil
}

// FindService is the Docker service named name (or whose ID starts with
// it, 12 characters or more). An unknown name is an error listing the
// known services, or saying that Docker's metadata was not collected.
func FindService(m *Model, name string) (*DockerService, error) {
	if m.Docker == nil || len(m.Docker.Services) == 0 {
		why := "Docker's metadata names no service here"
		switch {
		case m.Docker == nil:
			why = "Docker's metadata was not collected"
		case m.Docker.Services == nil:
			why = "Docker's services were not collected (a worker lists none; docker service inspect on a manager)"
		}
		return nil, fmt.Errorf("no service %q: %s (give --port, or --vip and --netns)", name, why)
	}
	var found []*DockerService
	for i := range m.Docker.Services {
		s := &m.Docker.Services[i]
		if s.Name == name || (len(name) >= 12 && strings.HasPrefix(s.ID, name)) {
			found = append(found, s)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	if len(found) > 1 {
		return nil, fmt.Errorf("service %q: %d services match it: give the full ID", name, len(found))
	}
	known := ServiceNames(m)
	if len(known) == 0 {
		return nil, fmt.Errorf("no service %q: the %d services of Docker's metadata carry neither a name nor an ID", name, len(m.Docker.Services))
	}
	return nil, fmt.Errorf("no service %q: known services: %s", name, strings.Join(known, ", "))
}

// ServiceNames are the names of the services Docker's metadata knows,
// sorted; a service without a name is listed by its ID's first 12
// characters (which FindService takes), one with neither is left out.
func ServiceNames(m *Model) []string {
	if m == nil || m.Docker == nil {
		return nil
	}
	var out []string
	for _, s := range m.Docker.Services {
		switch {
		case s.Name != "":
			out = append(out, s.Name)
		case len(s.ID) >= 12:
			out = append(out, s.ID[:12])
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TaskNames are the names of the tasks whose namespaces the model holds
// (as TaskNetns takes them), sorted.
func TaskNames(m *Model) []string {
	if m == nil {
		return nil
	}
	var out []string
	for _, ns := range m.Namespaces {
		if ns.Docker != nil && ns.Docker.Task != "" {
			out = append(out, ns.Docker.Task)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// publishedQueries are the routing mesh's paths of s's published ports
// (ingress mode: a host-mode port bypasses the mesh).
func publishedQueries(s *DockerService, sq ServiceQuery) ([]Query, error) {
	var out []Query
	var all []string
	for _, p := range s.Ports {
		if p.Published == 0 || p.Mode == "host" {
			continue
		}
		all = append(all, fmt.Sprintf("%s/%d", p.Proto, p.Published))
		if (sq.Proto == "" || sq.Proto == p.Proto) && (sq.Port == 0 || sq.Port == p.Published) {
			out = append(out, Query{Proto: p.Proto, Port: p.Published})
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case len(all) > 0:
		return nil, fmt.Errorf("service %s publishes %s, not %s", s.Name, strings.Join(all, ", "), protoPort(sq.Proto, sq.Port))
	}
	return nil, fmt.Errorf("service %s publishes no port through the routing mesh: give --from-task TASK for the path to its VIP", s.Name)
}

// serviceVIPFrom is the VIP of s that a call from ns meets: the one in a
// network ns has an interface in, else the first (whose path then says
// that the caller cannot reach it). The ingress network's VIP serves the
// routing mesh only.
func serviceVIPFrom(m *Model, s *DockerService, ns *Namespace) (netip.Addr, error) {
	var vips []netip.Addr
	for _, v := range ServiceVIPs(m) {
		if v.Service == s.Name {
			vips = append(vips, v.VIP)
		}
	}
	if len(vips) == 0 {
		if s.EndpointMode == "dnsrr" {
			return netip.Addr{}, fmt.Errorf("service %s has no VIP (endpoint mode dnsrr: its name gives its tasks' addresses; see path --dns %s --from-task %s)", s.Name, s.Name, taskLabel(ns))
		}
		return netip.Addr{}, fmt.Errorf("service %s has no VIP outside the ingress network", s.Name)
	}
	for _, v := range vips {
		if l, _ := ns.connected(v); l != nil {
			return v, nil
		}
	}
	return vips[0], nil
}

// servicePorts are the ports a call to s's VIP goes to: sq's, else the
// target ports Docker lists for s, else the ports s's tasks on this node
// listen on (for a service that publishes nothing, Docker keeps no port).
func servicePorts(m *Model, s *DockerService, sq ServiceQuery) []ProtoPort {
	proto := sq.Proto
	if sq.Port != 0 {
		return []ProtoPort{{orName(proto, "tcp"), sq.Port}}
	}
	var out []ProtoPort
	add := func(pp ProtoPort) {
		if (proto == "" || proto == pp.Proto) && !slices.Contains(out, pp) {
			out = append(out, pp)
		}
	}
	for _, p := range s.Ports {
		if p.Target != 0 {
			add(ProtoPort{p.Proto, p.Target})
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, ns := range m.Namespaces {
		if ns.Docker == nil || ns.Docker.Service != s.Name {
			continue
		}
		for _, k := range ns.Sockets {
			if !k.Addr.IsLoopback() {
				add(ProtoPort{k.Proto, k.Port})
			}
		}
	}
	slices.SortFunc(out, func(a, b ProtoPort) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return strings.Compare(a.Proto, b.Proto)
	})
	return out
}

func protoPort(proto string, port int) string {
	switch {
	case port == 0:
		return proto
	case proto == "":
		return fmt.Sprint(port)
	}
	return fmt.Sprintf("%s/%d", proto, port)
}

func protoWord(proto string) string {
	if proto == "" {
		return ""
	}
	return " for " + proto
}

// ServicePaths is what `path --service` prints as JSON: the service's
// paths (docs/json.md).
type ServicePaths struct {
	Service string  `json:"service"`
	Paths   []*Path `json:"paths"`
}

// WorseVerdict is the worse of two verdicts: broken over unknown over
// complete.
func WorseVerdict(a, b Verdict) Verdict {
	rank := func(v Verdict) int {
		switch v {
		case VerdictComplete:
			return 0
		case VerdictUnknown:
			return 1
		}
		return 2
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// taskLabel is what an operator calls ns: its task's name, else its name.
func taskLabel(ns *Namespace) string {
	if ns.Docker != nil && ns.Docker.Task != "" {
		return ns.Docker.Task
	}
	return ns.Name
}
