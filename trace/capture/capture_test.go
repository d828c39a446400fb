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

	"github.com/meshtrace/meshtrace/trace"
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
	points []trace.Point
}

var _ Opener = (*fakeOpener)(nil)

func (o *fakeOpener) Open(p trace.Point, dir trace.Dir, prog []bpf.RawInstruction) (Socket, error) {
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

// capturedAll is what captureAll read.
type capturedAll struct {
	Stopped string
	Probes  []trace.ProbeResult
	Stats   []trace.PointStat
	Frames  []trace.Frame
}

// captureAll runs a capture (Open, then the watch Run does) to its end
// and keeps every frame.
func captureAll(ctx context.Context, plan *trace.CapturePlan, op Opener, o Options) (*capturedAll, error) {
	live, err := Open(plan, op, o)
	if err != nil {
		return nil, err
	}
	probes := make(chan []trace.ProbeResult, 1)
	go watch(ctx, live, live.o, probes)
	c := &capturedAll{}
	cr := trace.NewCorrelator(trace.Options{})
	for {
		it, err := live.Next(ctx)
		if err != nil {
			break
		}
		if it.Frame != nil {
			c.Frames = append(c.Frames, *it.Frame)
			cr.Add(it.Frame)
			if o.Count > 0 && cr.Completed() >= o.Count {
				live.Stop("count")
			}
		}
	}
	c.Stats = live.Close()
	c.Stopped = live.Stopped()
	select {
	case c.Probes = <-probes:
	default:
	}
	return c, nil
}

func fakeMesh(conns ...synth.Conn) (*fakeOpener, *trace.CapturePlan) {
	o := &fakeOpener{fail: map[int]bool{}, queues: map[[2]int][][]byte{}, points: trace.PointsOf(synth.MeshPoints)}
	for _, c := range conns {
		c.Emit(func(s synth.Sighting) {
			d := trace.DirIn
			if s.Out {
				d = trace.DirOut
			}
			k := [2]int{s.Point, int(d)}
			o.queues[k] = append(o.queues[k], s.Frame)
		})
	}
	return o, &trace.CapturePlan{Points: o.points, Filter: trace.FilterSpec{Proto: trace.ProtoTCP, Ports: []uint16{8080, 80}, VXLAN: true}}
}

func TestLiveCaptureProbe(t *testing.T) {
	o, plan := fakeMesh(synth.HTTPConn(40000, false, 0, 1000), synth.HTTPConn(40001, true, time.Millisecond, 5000))
	o.fail[13] = true // node1's task: its interface is gone
	var openAtProbe int32
	lc, err := captureAll(context.Background(), plan, o, Options{
		Timeout: 10 * time.Second, Linger: 200 * time.Millisecond,
		Probe: func(context.Context) []trace.ProbeResult {
			openAtProbe = o.open.Load()
			o.start.Store(true)
			return []trace.ProbeResult{{From: "client", Answer: "web.1"}}
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
	conns := trace.Correlate(lc.Frames, trace.Options{})
	if len(conns) != 2 || len(conns[0].Packets) != 10 {
		t.Fatalf("%d connections", len(conns))
	}
	// The fake stamps frames when read, so look the SYNs up by flags.
	var seen []int
	for _, c := range conns {
		for _, lp := range c.Packets {
			if lp.Key.Flags == trace.FlagSYN {
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
		o, plan := fakeMesh(synth.HTTPConn(40000, false, 0, 1000))
		o.start.Store(true)
		lc, err := captureAll(context.Background(), plan, o, Options{Count: 1, Timeout: 10 * time.Second})
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
		lc, err := captureAll(ctx, plan, o, Options{Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if lc.Stopped != "interrupted" || o.open.Load() != 0 {
			t.Errorf("stopped %q with %d sockets open", lc.Stopped, o.open.Load())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		o, plan := fakeMesh()
		lc, err := captureAll(context.Background(), plan, o, Options{Timeout: 50 * time.Millisecond})
		if err != nil || lc.Stopped != "timeout" {
			t.Errorf("stopped %q, %v", lc.Stopped, err)
		}
	})
	t.Run("nothing opens", func(t *testing.T) {
		o, plan := fakeMesh()
		for i := range plan.Points {
			o.fail[i] = true
		}
		if _, err := captureAll(context.Background(), plan, o, Options{Timeout: time.Second}); err == nil {
			t.Error("no error when no point opens")
		}
	})
}

// ringOpener's sockets hold frames stamped when they were queued (what a
// kernel ring holds); Next waits until start is closed.
type ringOpener struct {
	mu     sync.Mutex
	queued map[int][]ringFrame // by socket, in the order opened
	n      int
	start  chan struct{}
}

type ringFrame struct {
	data []byte
	ts   time.Time
}

func (o *ringOpener) Open(p trace.Point, dir trace.Dir, prog []bpf.RawInstruction) (Socket, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	return &ringSocket{o: o, i: o.n - 1}, nil
}

func (o *ringOpener) queue(sock int, data []byte, ts time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.queued[sock] = append(o.queued[sock], ringFrame{data, ts})
}

type ringSocket struct {
	o *ringOpener
	i int
}

func (s *ringSocket) Next() ([]byte, time.Time, error) {
	<-s.o.start
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	q := s.o.queued[s.i]
	if len(q) == 0 {
		return nil, time.Time{}, ErrTimeout
	}
	s.o.queued[s.i] = q[1:]
	return q[0].data, q[0].ts, nil
}

func (s *ringSocket) Drops() uint64 { return 0 }
func (s *ringSocket) Close() error  { return nil }

// TestLiveStopReadsTheRing: frames a socket's ring holds when the capture
// stops, stamped before the stop, are still handed out (a reader that
// lags under load left them unread: counted as missing); those stamped
// after it are not.
func TestLiveStopReadsTheRing(t *testing.T) {
	points := trace.PointsOf(synth.MeshPoints)[:2]
	plan := &trace.CapturePlan{Points: points, Filter: trace.FilterSpec{Proto: trace.ProtoUDP, Ports: []uint16{53}}}
	o := &ringOpener{queued: map[int][]ringFrame{}, start: make(chan struct{})}
	live, err := Open(plan, o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	const perSocket = 3000
	frame := func(id uint16) []byte {
		ip := synth.Pkt{Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dst: netip.MustParseAddrPort("10.0.0.3:53"),
			Proto: synth.UDP, ID: id, Payload: []byte("query")}.IPv4()
		return synth.Ether([6]byte{2}, [6]byte{4}, ip)
	}
	now := time.Now()
	for s := range o.n {
		for i := range perSocket {
			o.queue(s, frame(uint16(i)), now)
		}
	}
	live.Stop("timeout")
	time.Sleep(10 * time.Millisecond) // the stop is seen first
	for s := range o.n {
		o.queue(s, frame(9999), time.Now().Add(time.Hour)) // after the stop
	}
	close(o.start)
	n := 0
	for {
		it, err := live.Next(context.Background())
		if err != nil {
			break
		}
		if it.Frame != nil {
			if it.Frame.Pkt.ID == 9999 {
				t.Errorf("a frame stamped after the stop was handed out")
			}
			n++
		}
	}
	if want := o.n * perSocket; n != want {
		t.Errorf("%d frames handed out, want the %d the sockets held at the stop", n, want)
	}
}
