package capture

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace/synth"
)

// fakeOpener serves the sightings of synthetic connections once "go" is
// set, each to the socket of its point and direction.
type fakeOpener struct {
	mu     sync.Mutex
	fail   map[int]bool
	queues map[[2]int][][]byte
	open   atomic.Int32
	closed atomic.Int32
	start  atomic.Bool
	points []Point
}

var _ Opener = (*fakeOpener)(nil)

func (o *fakeOpener) Open(p Point, dir Dir, prog []bpf.RawInstruction) (Socket, error) {
	for i, q := range o.points {
		if q == p {
			if o.fail[i] {
				return nil, errors.New("no such interface")
			}
			if len(prog) == 0 {
				return nil, errors.New("no filter")
			}
			o.open.Add(1)
			return &fakeSocket{o: o, key: [2]int{i, int(dir)}}, nil
		}
	}
	return nil, errors.New("unknown point")
}

type fakeSocket struct {
	o   *fakeOpener
	key [2]int
}

var _ Socket = (*fakeSocket)(nil)

func (s *fakeSocket) Next() ([]byte, time.Time, error) {
	if s.o.start.Load() {
		s.o.mu.Lock()
		q := s.o.queues[s.key]
		if len(q) > 0 {
			s.o.queues[s.key] = q[1:]
			s.o.mu.Unlock()
			return q[0], time.Now(), nil
		}
		s.o.mu.Unlock()
	}
	time.Sleep(time.Millisecond)
	return nil, time.Time{}, ErrTimeout
}

func (s *fakeSocket) Drops() uint64 { return 1 }
func (s *fakeSocket) Close() error  { s.o.closed.Add(1); s.o.open.Add(-1); return nil }

func fakeMesh(conns ...synth.Conn) (*fakeOpener, *CapturePlan) {
	o := &fakeOpener{fail: map[int]bool{}, queues: map[[2]int][][]byte{}, points: meshPoints()}
	for _, c := range conns {
		c.Emit(func(s synth.Sighting) {
			d := DirIn
			if s.Out {
				d = DirOut
			}
			k := [2]int{s.Point, int(d)}
			o.queues[k] = append(o.queues[k], s.Frame)
		})
	}
	return o, &CapturePlan{Points: o.points, Filter: FilterSpec{Proto: ProtoTCP, Ports: []uint16{8080, 80}, VXLAN: true}}
}

func TestLiveCaptureProbe(t *testing.T) {
	o, plan := fakeMesh(conn(40000, false, 0, 1000), conn(40001, true, time.Millisecond, 5000))
	o.fail[13] = true // node1's task: its interface is gone
	var openAtProbe int32
	lc, err := Live(context.Background(), plan, o, LiveOptions{
		Timeout: 10 * time.Second, Linger: 200 * time.Millisecond,
		Probe: func(context.Context) []ProbeResult {
			openAtProbe = o.open.Load()
			o.start.Store(true)
			return []ProbeResult{{From: "client", Answer: "web.1"}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := int32(2 * (len(plan.Points) - 1)); openAtProbe != want {
		t.Errorf("%d sockets open when the probe started, want %d (every point, both directions)", openAtProbe, want)
	}
	if o.open.Load() != 0 {
		t.Errorf("%d sockets left open", o.open.Load())
	}
	if lc.Stopped != "probe" || len(lc.Probes) != 1 {
		t.Errorf("stopped %q, probes %v", lc.Stopped, lc.Probes)
	}
	if lc.Stats[13].Error == "" || lc.Stats[0].Drops != 2 {
		t.Errorf("stats %+v / %+v: want the failed point's error and both sockets' drops", lc.Stats[13], lc.Stats[0])
	}
	// Every sighting but those at the failed point arrived.
	lc.Sort()
	conns := Correlate(lc.Frames, Options{})
	if len(conns) != 2 || len(conns[0].Packets) != 10 {
		t.Fatalf("%d connections", len(conns))
	}
	// The fake stamps frames when read, so look the SYNs up by flags.
	var seen []int
	for _, c := range conns {
		for _, lp := range c.Packets {
			if lp.Key.Flags == FlagSYN {
				seen = append(seen, len(lp.Frames))
			}
		}
	}
	if len(seen) != 2 || seen[0]+seen[1] != 9+12 {
		t.Errorf("SYNs seen %v times, want 9 and 12 (the remote one: 13 hops, one point failed)", seen)
	}
}

func TestLiveCaptureStops(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		o, plan := fakeMesh(conn(40000, false, 0, 1000))
		o.start.Store(true)
		lc, err := Live(context.Background(), plan, o, LiveOptions{Count: 1, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if lc.Stopped != "count" {
			t.Errorf("stopped %q, want count", lc.Stopped)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		o, plan := fakeMesh()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		lc, err := Live(ctx, plan, o, LiveOptions{Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if lc.Stopped != "interrupted" || o.open.Load() != 0 {
			t.Errorf("stopped %q with %d sockets open", lc.Stopped, o.open.Load())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		o, plan := fakeMesh()
		lc, err := Live(context.Background(), plan, o, LiveOptions{Timeout: 50 * time.Millisecond})
		if err != nil || lc.Stopped != "timeout" {
			t.Errorf("stopped %q, %v", lc.Stopped, err)
		}
	})
	t.Run("nothing opens", func(t *testing.T) {
		o, plan := fakeMesh()
		for i := range plan.Points {
			o.fail[i] = true
		}
		if _, err := Live(context.Background(), plan, o, LiveOptions{Timeout: time.Second}); err == nil {
			t.Error("no error when no point opens")
		}
	})
}

func TestConntrackMatch(t *testing.T) {
	frames := framesOf(t, conn(40000, false, 0, 1000))
	conns := Correlate(frames, Options{})
	ap := netip.MustParseAddrPort
	tup := func(src, dst string) topology.Tuple {
		s, d := ap(src), ap(dst)
		return topology.Tuple{Src: s.Addr(), Dst: d.Addr(), SPort: s.Port(), DPort: d.Port()}
	}
	a := &Analysis{Points: meshPoints(), Frames: frames, Conntrack: map[string][]topology.Conntrack{
		"/host": {
			{Proto: "tcp", Orig: tup("192.168.77.9:40000", "192.168.77.10:8080"), Reply: tup("172.18.0.2:8080", "192.168.77.9:40000"), State: "TIME_WAIT"},
			{Proto: "tcp", Orig: tup("192.168.77.9:40001", "192.168.77.10:8080"), Reply: tup("172.18.0.2:8080", "192.168.77.9:40001")},
		},
		"/0a1b2c3d4e5f": {
			{Proto: "tcp", Orig: tup("10.0.0.2:40000", "10.0.0.6:8080"), Reply: tup("10.0.0.6:80", "10.0.0.2:40000")},
		},
	}}
	fl := a.Flows(conns)[0]
	if len(fl.Conntrack) != 2 {
		t.Fatalf("conntrack %+v, want the host's and the task's entry of this flow", fl.Conntrack)
	}
	if fl.Conntrack[0].Netns != "host" || fl.Conntrack[0].Reply != "172.18.0.2:8080 -> 192.168.77.9:40000" || fl.Conntrack[0].State != "TIME_WAIT" {
		t.Errorf("host entry %+v", fl.Conntrack[0])
	}
}
