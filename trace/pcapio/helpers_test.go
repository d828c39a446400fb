package pcapio

import (
	"bytes"
	"context"
	"testing"

	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// fixtureDir holds the recorded captures (see its README).
const fixtureDir = "../../fixtures/captures"

// analyse replays one capture held in memory, without a source.
func analyse(name string, data []byte) (*trace.Result, error) {
	rd := &Reader{}
	rd.Add(name, bytes.NewReader(data))
	return trace.Collect(trace.Replay(context.Background(), rd, nil, trace.ReplayOptions{}))
}

// bundleEnv reads a recorded bundle as a one-node source.
func bundleEnv(t *testing.T, dir, proto string, port int) *trace.Env {
	t.Helper()
	m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.FindPath(m, topology.Query{Proto: proto, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	// Unnamed, as `replay --from DIR` has it: the capture names the node.
	return &trace.Env{Proto: proto, Port: port, Nodes: []*trace.Node{{Model: m, Path: p, Addr: trace.NodeAddr(m)}}}
}
