// Package capture is trace's live side: AF_PACKET sockets with a kernel
// BPF filter in every namespace of the capture plan (one per direction),
// merged into one stream of frames in time order (a trace.Source), the
// kernel's tables read after the capture, the probe, and Run, which puts
// them together with trace.Stream. Everything else (correlation,
// explanation) is package trace's, and pure.
package capture

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/pcapio"
)

// ErrTimeout is what Socket.Next returns when nothing arrived within its
// poll interval.
var ErrTimeout = errors.New("capture poll timeout")

// Opener opens capture sockets: the real one an AF_PACKET socket inside
// the point's namespace (capture_linux.go), tests a fake.
type Opener interface {
	// Open returns a socket bound to the point's interface that keeps the
	// packets prog accepts; it is ready (filter attached) on return.
	Open(p trace.Point, dir trace.Dir, prog []bpf.RawInstruction) (Socket, error)
}

// Socket is one open capture socket.
type Socket interface {
	// Next returns the next Ethernet frame (valid until the next call) and
	// its capture time, or ErrTimeout.
	Next() ([]byte, time.Time, error)
	// Drops is how many packets the kernel dropped for lack of room.
	Drops() uint64
	Close() error
}

// Options control a live capture.
type Options struct {
	// Count stops the capture once this many flows are complete (0 = run
	// until Timeout or the context ends).
	Count int
	// Timeout bounds the capture (0 = until Count or the context).
	Timeout time.Duration
	// Probe, when set, runs once every socket is ready; the capture ends
	// Linger after it returns.
	Probe  func(ctx context.Context) []trace.ProbeResult
	Linger time.Duration
	// KeepData keeps every frame's bytes (for --pcap).
	KeepData bool
	// Tee, when set, sees every frame as it is handed out, in time order,
	// with its bytes: a stream of the capture as it goes
	// (pcapio.NgWriter: Wireshark reading from a pipe).
	Tee func(f *trace.Frame, data []byte)
	// MaxFrames bounds memory (default 2,000,000 frames).
	MaxFrames int
	// Reorder is how long a frame is held to merge the sockets' frames
	// in time order (default 100 ms: a ring block is handed over within
	// 8 ms, a socket polled every 50 ms).
	Reorder time.Duration
}

// Live is a running capture: every socket of the plan, merged into one
// stream of frames in time order (trace.Source). Stop ends it; Next then
// hands out what was captured and io.EOF.
type Live struct {
	o      Options
	points []trace.Point
	stats  []trace.PointStat
	socks  []*sock
	in     chan captured
	closed chan struct{} // in is closed: every reader is done
	stopCh chan struct{}
	once   sync.Once
	reason atomic.Value // why it stopped
	total  atomic.Int64
	full   atomic.Bool
	ign    atomic.Int64

	q    frameHeap
	cur  trace.Frame
	seq  int
	kept pcapio.Capture // with KeepData: every frame handed out, numbered
	shut sync.Once
}

// captured is one frame from a socket.
type captured struct {
	f    trace.Frame
	data []byte
	seq  int
}

// sock is one open socket.
type sock struct {
	point int
	dir   trace.Dir
	s     Socket
	err   string
}

// Open opens two sockets (one per direction) at every point of the plan
// and starts reading them; nothing else is changed on the system. A point
// that cannot be opened is reported in its stat, not fatal, unless no
// point opens. Frames stamped before the last socket was ready are
// dropped.
func Open(plan *trace.CapturePlan, op Opener, o Options) (*Live, error) {
	if o.MaxFrames <= 0 {
		o.MaxFrames = 2_000_000
	}
	if o.Linger <= 0 {
		o.Linger = 300 * time.Millisecond
	}
	if o.Reorder <= 0 {
		o.Reorder = 100 * time.Millisecond
	}
	l := &Live{o: o, points: plan.Points, in: make(chan captured, 4096), closed: make(chan struct{}), stopCh: make(chan struct{})}
	l.stats = make([]trace.PointStat, len(plan.Points))
	for i, p := range plan.Points {
		l.stats[i].Point = p
	}
	l.kept.Points = plan.Points
	for i, p := range plan.Points {
		for _, dir := range []trace.Dir{trace.DirIn, trace.DirOut} {
			prog, err := Assemble(plan.Filter, dir, p.Terminal)
			if err != nil {
				l.closeSockets()
				return nil, err
			}
			s, err := op.Open(p, dir, prog)
			if err != nil {
				l.stats[i].Error = err.Error()
				break
			}
			l.socks = append(l.socks, &sock{point: i, dir: dir, s: s})
		}
	}
	if len(l.socks) == 0 {
		return nil, fmt.Errorf("trace: no capture point could be opened (first: %s)", firstError(l.stats))
	}
	readyAt := time.Now().UnixNano()
	var wg sync.WaitGroup
	for _, s := range l.socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.read(s, readyAt)
		}()
	}
	go func() {
		wg.Wait()
		close(l.in)
		close(l.closed)
	}()
	return l, nil
}

// read is a socket's reader loop: it decodes each frame and hands it to
// the merge.
func (l *Live) read(s *sock, readyAt int64) {
	for {
		select {
		case <-l.stopCh:
			return
		default:
		}
		data, ts, err := s.s.Next()
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			s.err = err.Error()
			return
		}
		t := ts.UnixNano()
		if t < readyAt { // queued before the filter was attached
			continue
		}
		var c captured
		if trace.Decode(trace.LinkEthernet, data, &c.f) != nil {
			l.ign.Add(1)
			continue
		}
		if l.total.Add(1) > int64(l.o.MaxFrames) {
			l.full.Store(true)
			l.Stop("limit")
			continue
		}
		c.f.Point, c.f.Dir, c.f.TS = int32(s.point), s.dir, t
		if l.o.KeepData || l.o.Tee != nil {
			c.data = append([]byte(nil), data...)
		}
		select {
		case l.in <- c:
		case <-l.stopCh:
			// Stopping: what is read still goes in, unless nobody reads.
			select {
			case l.in <- c:
			case <-time.After(time.Second):
				return
			}
		}
	}
}

// Stop ends the capture (the first reason given stays): the sockets stop
// being read, Next hands out what was captured, then io.EOF.
func (l *Live) Stop(reason string) {
	l.once.Do(func() {
		l.reason.Store(reason)
		close(l.stopCh)
	})
}

// Stopped says why the capture ended: count, timeout, probe,
// interrupted, limit ("" while it runs).
func (l *Live) Stopped() string {
	r, _ := l.reason.Load().(string)
	return r
}

// Next implements trace.Source: frames in time order, held Reorder long
// to merge the sockets; while nothing comes, the capture time reached
// every 50 ms.
func (l *Live) Next(ctx context.Context) (trace.Item, error) {
	tick := time.NewTimer(50 * time.Millisecond)
	defer tick.Stop()
	for {
		mark := time.Now().Add(-l.o.Reorder).UnixNano()
		stopped := false
		select {
		case <-l.closed:
			stopped = true
		default:
		}
		if stopped { // what the readers sent last is still in the channel
			for c := range l.in {
				c.seq = l.seq
				l.seq++
				heap.Push(&l.q, c)
			}
		}
		if len(l.q) > 0 && (stopped || l.q[0].f.TS <= mark) {
			return l.pop(), nil
		}
		if stopped {
			return trace.Item{}, io.EOF
		}
		select {
		case c, ok := <-l.in:
			if ok {
				c.seq = l.seq
				l.seq++
				heap.Push(&l.q, c)
			}
		case <-tick.C:
			return trace.Item{Now: mark}, nil
		case <-ctx.Done():
			l.Stop("interrupted")
		}
	}
}

func (l *Live) pop() trace.Item {
	c := heap.Pop(&l.q).(captured)
	l.cur = c.f
	l.stats[c.f.Point].Frames++
	if l.o.Tee != nil {
		l.o.Tee(&l.cur, c.data)
	}
	if l.o.KeepData {
		l.kept.Frames = append(l.kept.Frames, l.cur)
		l.kept.Data = append(l.kept.Data, c.data)
		l.cur.Num = int32(len(l.kept.Frames))
		l.kept.Frames[len(l.kept.Frames)-1].Num = l.cur.Num
	}
	return trace.Item{Frame: &l.cur, Data: c.data}
}

// Points implements trace.Source.
func (l *Live) Points() []trace.Point { return l.points }

// Ignored implements trace.Source.
func (l *Live) Ignored() int { return int(l.ign.Load()) }

// Close stops the capture and closes every socket; it returns the
// points' stats (frames handed out, kernel drops, errors).
func (l *Live) Close() []trace.PointStat {
	l.shut.Do(func() {
		l.Stop("interrupted")
		go func() { // nobody may read any more: let the readers finish
			for range l.in {
			}
		}()
		<-l.closed
		l.closeSockets()
		for _, s := range l.socks {
			st := &l.stats[s.point]
			st.Drops += s.s.Drops()
			if s.err != "" {
				st.Error = s.err
			}
		}
	})
	return l.stats
}

func (l *Live) closeSockets() {
	for _, s := range l.socks {
		s.s.Close()
	}
}

// Kept is every frame handed out with its bytes (Options.KeepData), each
// numbered by its place.
func (l *Live) Kept() *pcapio.Capture { return &l.kept }

// frameHeap orders captured frames by time, then by arrival.
type frameHeap []captured

func (h frameHeap) Len() int { return len(h) }
func (h frameHeap) Less(i, j int) bool {
	return h[i].f.TS < h[j].f.TS || (h[i].f.TS == h[j].f.TS && h[i].seq < h[j].seq)
}
func (h frameHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)   { *h = append(*h, x.(captured)) }
func (h *frameHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = captured{}
	*h = old[:len(old)-1]
	return x
}

func firstError(st []trace.PointStat) string {
	for _, s := range st {
		if s.Error != "" {
			return s.Point.Label("") + ": " + s.Error
		}
	}
	return "no points"
}
