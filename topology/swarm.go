package topology

import "fmt"

// SwarmMembership says whether the node takes part in a swarm's routing
// mesh, from what was read.
type SwarmMembership int

const (
	// SwarmUnknown: what would decide was not collected.
	SwarmUnknown SwarmMembership = iota
	// SwarmNode: something of the mesh is there (Evidence says what).
	SwarmNode
	// NotSwarmNode: the host was read and holds nothing of a swarm node.
	NotSwarmNode
)

// Swarm decides whether the node is a swarm node, from evidence only and
// never from what is missing. A swarm node has docker_gwbridge in its root
// namespace (dockerd creates it when it joins, before any task), and
// usually the ingress sandbox, overlay namespaces, tasks and swarm-scoped
// networks in Docker's metadata: any of them makes it one. It is not one
// when its links were read, there is no docker_gwbridge, no namespace plays
// a part of the mesh, and Docker's metadata, when it was read, names no
// swarm network or service. Evidence lists the facts decided on.
func Swarm(m *Model) (SwarmMembership, []string) {
	var yes []string
	host := m.Lookup("host")
	if host != nil && host.Link("docker_gwbridge") != nil {
		yes = append(yes, "the host has docker_gwbridge")
	}
	for _, ns := range m.Namespaces {
		switch ns.Role {
		case RoleIngressSandbox, RoleOverlay, RoleLB, RoleTask:
			yes = append(yes, fmt.Sprintf("%s is a namespace of the mesh (%s)", ns.Name, ns.Role))
		}
	}
	if d := m.Docker; d != nil {
		for _, n := range d.Networks {
			if n.Scope == "swarm" || n.Ingress {
				yes = append(yes, fmt.Sprintf("Docker has the swarm network %s", n.Name))
			}
		}
		if len(d.Services) > 0 {
			yes = append(yes, fmt.Sprintf("Docker has %d swarm service(s)", len(d.Services)))
		}
	}
	if len(yes) > 0 {
		return SwarmNode, yes
	}
	if host == nil || host.Links == nil {
		return SwarmUnknown, nil
	}
	no := []string{"the host has no docker_gwbridge (dockerd creates it when the node joins a swarm)"}
	if len(m.Namespaces) == 1 {
		no = append(no, "no network namespace but the host's")
	} else {
		no = append(no, "no namespace plays a part of the routing mesh (no ingress sandbox, overlay, load balancer or task)")
	}
	if m.Docker != nil {
		no = append(no, "Docker's metadata names no swarm network or service")
	}
	return NotSwarmNode, no
}
