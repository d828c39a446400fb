package inspect

import "github.com/meshtrace/meshtrace/topology"

// emptyExtra is a namespace without SAs, policies or counters.
type emptyExtra struct{}

var (
	_ XfrmReader     = emptyExtra{}
	_ CountersReader = emptyExtra{}
)

func (emptyExtra) ReadXfrm(*Target) (*topology.Xfrm, error) {
	return &topology.Xfrm{States: []topology.XfrmState{}, Policies: []topology.XfrmPolicy{}}, nil
}

func (emptyExtra) ReadCounters(*Target) (*topology.Counters, error) { return &topology.Counters{}, nil }
