package tracesrc

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/flows"
)

func fixture(parts ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", "..", "fixtures", "captures"}, parts...)...)
}

// env is node0 of the recorded mesh (fixtures/captures/bundle-node0),
// unnamed as `--from DIR` has it.
func env(t *testing.T) *trace.Env {
	t.Helper()
	m, err := source.Load(context.Background(), source.Spec{Bundle: fixture("bundle-node0")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	return &trace.Env{Proto: "tcp", Port: 8080, Nodes: []*trace.Node{{Model: m, Path: p, Addr: trace.NodeAddr(m)}}}
}

// The recorded mesh capture: flow 1 served by node0's task, flow 2 by
// node1's across VXLAN.
func TestFromReplay(t *testing.T) {
	res, err := trace.Replay([]string{fixture("mesh-tcp.pcapng")}, env(t), trace.ReplayOptions{PacketHops: true})
	if err != nil {
		t.Fatal(err)
	}
	cs := FromResult(res, "")
	if len(cs) != 2 {
		t.Fatalf("%d connections, want 2", len(cs))
	}
	c := cs[0]
	if !c.Answered || c.Backend != "10.0.0.6" || c.BackendNetns != "6a45d1ce85aa" || c.BackendNode != "" || c.Lost != nil {
		t.Fatalf("flow 1: %+v", c)
	}
	// node0 is the node drawn: its sightings carry no node.
	if c.Hops[1].Netns != "host" || c.Hops[1].Node != "" || c.Hops[1].TS.IsZero() {
		t.Fatalf("flow 1 hop 2: %+v", c.Hops[1])
	}
	if len(c.Packets) < 8 || c.Packets[0].Flags != "SYN" || len(c.Packets[0].Hops) != len(c.Hops) {
		t.Fatalf("flow 1 packets: %d, first %+v", len(c.Packets), c.Packets[0])
	}
	kinds := map[string]bool{}
	for _, r := range c.Rewrites {
		kinds[r.Kind] = true
	}
	for _, k := range []string{"dnat", "ipvs", "snat", "redirect"} {
		if !kinds[k] {
			t.Errorf("flow 1 has no %s rewrite: %v", k, kinds)
		}
	}
	remote := false
	for _, h := range cs[1].Hops {
		remote = remote || h.Node == "node1"
	}
	if !remote || cs[1].Backend != "10.0.0.7" {
		t.Fatalf("flow 2 should cross to node1: %+v", cs[1])
	}
}

// fakeOpener plays a recorded capture back through the sockets: each
// socket delivers its point's frames in its direction, at the recorded
// pace, except that frames after split wait pause first (so that a
// snapshot sees the first connection alone).
type fakeOpener struct {
	cap   trace.Capture
	start time.Time
	split int64
	pause time.Duration
}

func (o *fakeOpener) Open(p trace.Point, dir trace.Dir, _ []bpf.RawInstruction) (trace.Socket, error) {
	s := &fakeSocket{o: o}
	for i, f := range o.cap.Frames {
		fp := o.cap.Points[f.Point]
		if fp.Netns == p.Netns && fp.Ifname == p.Ifname && (fp.Node == p.Node || fp.Node == "node0" && p.Node == "") && f.Dir == dir {
			s.idx = append(s.idx, i)
		}
	}
	return s, nil
}

type fakeSocket struct {
	o    *fakeOpener
	idx  []int
	next int
}

func (s *fakeSocket) Next() ([]byte, time.Time, error) {
	if s.next >= len(s.idx) {
		time.Sleep(5 * time.Millisecond)
		return nil, time.Time{}, trace.ErrTimeout
	}
	i := s.idx[s.next]
	f := s.o.cap.Frames[i]
	at := s.o.start.Add(time.Duration(f.TS - s.o.cap.Frames[0].TS))
	if f.TS >= s.o.split {
		at = at.Add(s.o.pause)
	}
	if d := time.Until(at); d > 0 {
		time.Sleep(min(d, 5*time.Millisecond))
		return nil, time.Time{}, trace.ErrTimeout
	}
	s.next++
	return s.o.cap.Data[i], at, nil
}

func (s *fakeSocket) Drops() uint64 { return 0 }
func (s *fakeSocket) Close() error  { return nil }

func TestLiveSendsSnapshotsThenResult(t *testing.T) {
	rd := &trace.Reader{KeepData: true}
	if err := rd.ReadFile(fixture("mesh-tcp.pcapng")); err != nil {
		t.Fatal(err)
	}
	rd.Capture.Sort()
	e := env(t)
	trace.Attribute(&rd.Capture, e)
	// the second connection starts at its client SYN: after the first
	// connection's last frame.
	res, _ := trace.Replay([]string{fixture("mesh-tcp.pcapng")}, e, trace.ReplayOptions{})
	second, _ := time.Parse(time.RFC3339Nano, res.Flows[1].Start)
	op := &fakeOpener{cap: rd.Capture, start: time.Now().Add(50 * time.Millisecond), split: second.UnixNano(), pause: 600 * time.Millisecond}
	live := Live{Every: 40 * time.Millisecond, Config: func(ctx context.Context, r flows.Request) (trace.Config, error) {
		if r.Query.Port != 8080 {
			t.Errorf("request %+v", r)
		}
		return trace.Config{Env: e, Opener: op, Live: trace.LiveOptions{Count: 2, Timeout: 10 * time.Second}}, nil
	}}
	ch, err := live.Start(context.Background(), flows.Request{Query: topology.Query{Proto: "tcp", Port: 8080}})
	if err != nil {
		t.Fatal(err)
	}
	var ups []flows.Update
	for u := range ch {
		ups = append(ups, u)
	}
	if len(ups) < 3 || !ups[0].Ready || ups[0].Done || len(ups[0].Conns) != 0 {
		t.Fatalf("%d updates, first %+v: want ready, snapshots, the result", len(ups), ups[0])
	}
	first, last := ups[1], ups[len(ups)-1]
	if first.Done || len(first.Conns) != 1 || first.Conns[0].Lost != nil {
		t.Fatalf("first snapshot: done=%v, %d conns %+v", first.Done, len(first.Conns), first.Conns)
	}
	if !last.Done || last.Err != nil || len(last.Conns) != 2 || !last.Conns[0].Answered {
		t.Fatalf("result: %+v", last)
	}
	for _, u := range ups[1 : len(ups)-1] {
		if u.Done || u.Ready {
			t.Fatal("a snapshot says done")
		}
	}
}

func TestLiveReportsConfigErrors(t *testing.T) {
	live := Live{Config: func(context.Context, flows.Request) (trace.Config, error) {
		return trace.Config{}, context.DeadlineExceeded
	}}
	ch, err := live.Start(context.Background(), flows.Request{})
	if err != nil {
		t.Fatal(err)
	}
	u, ok := <-ch
	if !ok || !u.Done || u.Err != context.DeadlineExceeded {
		t.Fatalf("got %+v", u)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed after the last update")
	}
}
