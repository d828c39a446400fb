package source

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/topology"
)

// Node is one node as a trace sees it: its model, the path of the traced
// port through it (nil when the port has none there) and the address
// clients and the other nodes' VXLAN reach it on.
type Node struct {
	Name  string
	Model *topology.Model
	Path  *topology.Path
	Addr  netip.Addr
}

// Env is what a trace of one port knows of the system: every node's model
// and path (with a mesh, each of its nodes, Spec's node first; else the
// one node), and the mesh's state.
type Env struct {
	Query topology.Query
	Nodes []*Node
	// Mesh is the built-in mesh's state (its client namespace, its nodes'
	// namespaces), nil for another source.
	Mesh *mesh.State
}

// LoadEnv loads every node of the source and the path of q through each.
// Conntrack is not read (a trace reads it itself, after its capture). The
// first node's path must exist: its error (a *topology.NotPublishedError
// when the port is not published) is LoadEnv's.
func LoadEnv(ctx context.Context, s Spec, q topology.Query) (*Env, error) {
	s.NoConntrack = true
	m, err := Load(ctx, s)
	if err != nil {
		return nil, err
	}
	p, err := topology.FindPath(m, q)
	if err != nil {
		return nil, err
	}
	env := &Env{Query: q}
	if s.Mesh == "" {
		a, _ := topology.NodeAddress(m.Lookup("host"))
		env.Nodes = []*Node{{Model: m, Path: p, Addr: a}}
		return env, nil
	}
	if env.Mesh, err = mesh.Load("", s.Mesh); err != nil {
		return nil, err
	}
	for _, n := range env.Mesh.Nodes {
		if n.Name == s.node() {
			env.Nodes = append([]*Node{{Name: n.Name, Model: m, Path: p, Addr: n.IP}}, env.Nodes...)
			continue
		}
		other := s
		other.Node = n.Name
		om, err := Load(ctx, other)
		if err != nil {
			return nil, fmt.Errorf("mesh %s node %s: %w", s.Mesh, n.Name, err)
		}
		op, _ := topology.FindPath(om, q)
		env.Nodes = append(env.Nodes, &Node{Name: n.Name, Model: om, Path: op, Addr: n.IP})
	}
	if len(env.Nodes) == 0 || env.Nodes[0].Name != s.node() {
		return nil, fmt.Errorf("mesh %s: no node %s in its state", s.Mesh, s.node())
	}
	return env, nil
}
