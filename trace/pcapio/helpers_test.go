package pcapio

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/synth"
)

// fixtureDir holds the recorded captures (see its README).
const fixtureDir = "../../fixtures/captures"

// analyse replays one capture held in memory, without a source.
func analyse(name string, data []byte) (*trace.Result, error) {
	rd := &Reader{}
	rd.Add(name, bytes.NewReader(data))
	return trace.Collect(trace.Replay(context.Background(), rd, nil, trace.ReplayOptions{}))
}

// meshPoints are synth.MeshPoints as capture points.
func meshPoints() []trace.Point {
	var ps []trace.Point
	for _, l := range synth.MeshPoints {
		node, netns, ifname, _ := trace.ParseLabel(l)
		ps = append(ps, trace.Point{Node: node, Netns: netns, Ifname: ifname})
	}
	return ps
}

func conn(port uint16, remote bool, start time.Duration, isn uint32) synth.Conn {
	req, resp := synth.HTTP("web.1")
	return synth.Conn{ClientPort: port, Published: 8080, Remote: remote, Start: int64(time.Unix(1700000000, 0).Add(start).UnixNano()),
		ISN: isn, SISN: isn ^ 0x5a5a5a5a, ID: uint16(isn), SID: uint16(isn >> 16), Request: req, Response: resp}
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
