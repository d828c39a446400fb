package source

import (
	"context"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/topology"
)

// Counters snapshots the counters of a source's namespaces (a live one:
// this host, or the nodes of its mesh) through inspect.Snapshot: what a
// trace takes before and after its capture (capture.CounterReader).
type Counters struct{ Spec Spec }

// Snapshot reads the namespaces named of node (a mesh's node; "" = the
// Spec's own node, or this host).
func (c Counters) Snapshot(ctx context.Context, node string, names []string) (*topology.Model, error) {
	if err := needLinux(); err != nil {
		return nil, err
	}
	s := c.Spec
	o := inspect.Options{HostNetns: s.HostNetns, NetnsDirs: s.NetnsDirs, Firewall: s.Firewall, Modules: s.Modules}
	if s.Mesh != "" {
		if node == "" {
			node = s.node()
		}
		host, dir, err := mesh.Locate(s.Mesh, node)
		if err != nil {
			return nil, err
		}
		o.HostNetns, o.NetnsDirs = host, []string{dir}
	}
	return inspect.Snapshot(ctx, o, names)
}
