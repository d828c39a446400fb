package trace

import (
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Point is one capture point: an interface in a namespace, on a node.
type Point struct {
	Node   string `json:"node,omitempty"`
	Netns  string `json:"netns"`
	Ifname string `json:"ifname"`
	// Role says what the interface is on the path: uplink, gwbridge,
	// host-veth, sandbox-gw, sandbox-ingress, overlay-port, overlay-bridge,
	// vxlan, task-ingress, client.
	Role string `json:"role,omitempty"`
	// File is the capture file a replayed point came from.
	File string `json:"file,omitempty"`
	// Path is the namespace file to open the socket in (live only).
	Path string `json:"-"`
	// Terminal: the interface is no bridge port, so the IP stack takes
	// what it receives and drops a frame addressed to another host
	// (PACKET_OTHERHOST: ip_rcv's first test). Such a frame, a copy a
	// bridge flooded, is no hop of its packet (live only).
	Terminal bool `json:"-"`
}

// Label names the point the way pcapng interface blocks do:
// "ingress_sbox/eth1", or "node1/ingress_sbox/eth1" off the primary node.
func (p Point) Label(primary string) string {
	netns := p.Netns
	if netns == "" {
		netns = "?"
	}
	if p.File != "" && p.Netns == "" {
		netns = p.File
	}
	if p.Node != "" && p.Node != primary {
		return p.Node + "/" + netns + "/" + p.Ifname
	}
	return netns + "/" + p.Ifname
}

// PointsOf makes points of labels ("node/netns/ifname" or
// "netns/ifname", as Label writes them).
func PointsOf(labels []string) []Point {
	var ps []Point
	for _, l := range labels {
		node, netns, ifname, _ := ParseLabel(l)
		ps = append(ps, Point{Node: node, Netns: netns, Ifname: ifname})
	}
	return ps
}

// ParseLabel splits a pcapng interface name written by Label.
func ParseLabel(s string) (node, netns, ifname string, ok bool) {
	parts := strings.Split(s, "/")
	switch len(parts) {
	case 2:
		return "", parts[0], parts[1], parts[0] != "" && parts[1] != ""
	case 3:
		return parts[0], parts[1], parts[2], parts[0] != "" && parts[1] != "" && parts[2] != ""
	}
	return "", "", "", false
}

// Node is one node of the mesh as trace sees it: its model, the path of
// the traced port through it, and the address clients (and other nodes'
// VXLAN) reach it on.
type Node struct {
	Name  string
	Model *topology.Model
	Path  *topology.Path // nil: the port has no path here
	Addr  netip.Addr
}

// Env is what trace knows about the system: the nodes (Nodes[0] is the
// one clients enter) and the traced port. Replay without a source has
// no Env.
type Env struct {
	Proto string
	Port  int
	Nodes []*Node
}

// Primary is the name of the node clients enter.
func (e *Env) Primary() string {
	if e == nil || len(e.Nodes) == 0 {
		return ""
	}
	return e.Nodes[0].Name
}

// Node returns the node with that name ("" = the primary).
func (e *Env) Node(name string) *Node {
	if e == nil || len(e.Nodes) == 0 {
		return nil
	}
	if name == "" {
		return e.Nodes[0]
	}
	for _, n := range e.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NodeByAddr returns the node reached at a (a VTEP).
func (e *Env) NodeByAddr(a netip.Addr) *Node {
	if e == nil {
		return nil
	}
	for _, n := range e.Nodes {
		if n.Addr == a {
			return n
		}
		if h := n.Model.Lookup("host"); h != nil {
			if _, ok := h.Owns(a); ok && !a.IsLoopback() {
				return n
			}
		}
	}
	return nil
}

// Owner finds the namespace owning a, preferring tasks, then any
// namespace but a host; nil when none.
func (e *Env) Owner(a netip.Addr) (*Node, *topology.Namespace) {
	if e == nil {
		return nil, nil
	}
	var bn *Node
	var bns *topology.Namespace
	for _, n := range e.Nodes {
		for _, ns := range n.Model.Namespaces {
			if _, ok := ns.Owns(a); !ok {
				continue
			}
			if ns.Role == topology.RoleTask {
				return n, ns
			}
			if bns == nil || (bns.Role == topology.RoleHost && ns.Role != topology.RoleHost) {
				bn, bns = n, ns
			}
		}
	}
	return bn, bns
}

// hopsIn returns the path's hops that happen in a namespace of a node:
// shared hops and the hops of backends living there.
func (e *Env) hopsIn(node, netns string) []topology.Hop {
	n := e.Node(node)
	if n == nil || n.Path == nil {
		return nil
	}
	var hs []topology.Hop
	for _, h := range n.Path.Hops {
		if h.Netns == netns {
			hs = append(hs, h)
		}
	}
	for _, b := range n.Path.Backends {
		for _, h := range b.Hops {
			if h.Netns == netns {
				hs = append(hs, h)
			}
		}
	}
	return hs
}

// remoteBackend finds ip among the remote real servers of the nodes'
// paths (with its VTEP and, when Docker says, its task).
func (e *Env) remoteBackend(ip netip.Addr) (topology.Backend, bool) {
	if e == nil {
		return topology.Backend{}, false
	}
	for _, n := range e.Nodes {
		if n.Path == nil {
			continue
		}
		for _, b := range n.Path.Backends {
			if b.IP == ip && b.Remote {
				return b, true
			}
		}
	}
	return topology.Backend{}, false
}

// Step is one expected sighting on a route.
type Step struct {
	Point int
	Dir   Dir
}

// Route is the sequence of sightings the model expects for a request to
// one backend.
type Route struct {
	Backend string
	Node    string
	Steps   []Step
}
