// Package capture is trace's live side: AF_PACKET sockets with a kernel
// BPF filter in every namespace of the capture plan (one per direction),
// merged into one stream of frames in time order (a trace.Source), the
// kernel's tables read after the capture, the probe, and Run, which puts
// them together with trace.Stream. Everything else (correlation,
// explanation) is package trace's, and pure.
package capture

import (
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
//
// Each socket's reader decodes its frames into the socket's pending
// batch (one uncontended lock a frame, a wake-up only when the batch
// was empty); Next takes the batches whole and merges the sockets'
// queues by time (a heap of sockets, not of frames): no channel
// operation, allocation or timer a frame.
type Live struct {
	o      Options
	points []trace.Point
	stats  []trace.PointStat
	socks  []*sock
	wake   chan struct{} // a reader's batch went from empty to not
	closed chan struct{} // every reader is done
	stopCh chan struct{}
	gone   chan struct{} // Close: nobody reads any more
	once   sync.Once
	reason atomic.Value // why it stopped
	total  atomic.Int64
	full   atomic.Bool
	ign    atomic.Int64

	heap  []*sock // the sockets with queued frames, by their first frame
	mark  int64   // the release time last computed (now - Reorder)
	tick  *time.Timer
	cur   trace.Frame
	seq   int
	kept  pcapio.Capture // with KeepData: every frame handed out, numbered
	shut  sync.Once
	tmpty []captured // a drained batch handed back to a reader
	final bool       // the readers were done at the last take
}

// captured is one frame from a socket.
type captured struct {
	f    trace.Frame
	data []byte
	seq  int
}

// maxPending bounds a socket's batch: a reader that far ahead of the
// merge waits (the kernel's ring then holds, or drops and counts).
const maxPending = 1 << 16

// sock is one open socket.
type sock struct {
	point int
	dir   trace.Dir
	s     Socket
	err   string

	mu      sync.Mutex
	pending []captured // decoded by the reader, not yet taken

	q    []captured // taken, in time order from head (Next's own)
	head int
	hi   int // place in Live.heap, -1: not in it
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
	l := &Live{o: o, points: plan.Points, wake: make(chan struct{}, 1), closed: make(chan struct{}),
		stopCh: make(chan struct{}), gone: make(chan struct{})}
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
			l.socks = append(l.socks, &sock{point: i, dir: dir, s: s, hi: -1})
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
		close(l.closed)
		l.signal()
	}()
	return l, nil
}

// signal wakes Next (without blocking: one pending wake-up is enough).
func (l *Live) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// read is a socket's reader loop: it decodes each frame into the
// socket's batch. Once the capture stops it reads on what the kernel
// captured before the stop (the ring may lag behind under load), up to
// the first frame stamped after it or an empty ring.
func (l *Live) read(s *sock, readyAt int64) {
	stopAt := int64(-1)
	for {
		if stopAt < 0 {
			select {
			case <-l.stopCh:
				stopAt = time.Now().UnixNano()
			default:
			}
		}
		data, ts, err := s.s.Next()
		if errors.Is(err, ErrTimeout) {
			if stopAt >= 0 {
				return // the ring is empty
			}
			continue
		}
		if err != nil {
			s.err = err.Error()
			return
		}
		t := ts.UnixNano()
		if stopAt >= 0 && t > stopAt {
			return
		}
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
		if !l.put(s, &c) {
			return
		}
	}
}

// put adds a frame to the socket's batch, waiting while the batch is
// full; false when nobody reads any more.
func (l *Live) put(s *sock, c *captured) bool {
	for {
		s.mu.Lock()
		n := len(s.pending)
		if n < maxPending {
			s.pending = append(s.pending, *c)
			s.mu.Unlock()
			if n == 0 {
				l.signal()
			}
			return true
		}
		s.mu.Unlock()
		l.signal()
		select {
		case <-l.gone:
			return false
		case <-time.After(time.Millisecond):
		}
	}
}

// Stop ends the capture (the first reason given stays): the sockets stop
// being read once what they captured before is read, Next hands out what
// was captured, then io.EOF.
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
	timing := false
	done := ctx.Done()
	for {
		stopped := false
		select {
		case <-l.closed:
			stopped = true
		default:
		}
		select {
		case <-l.wake:
			l.take()
		default:
			if stopped && !l.final {
				l.take() // what the readers put last
			}
		}
		l.final = stopped
		if len(l.heap) > 0 {
			ts := l.heap[0].q[l.heap[0].head].f.TS
			if !stopped && ts > l.mark {
				l.mark = time.Now().Add(-l.o.Reorder).UnixNano()
			}
			if stopped || ts <= l.mark {
				return l.pop(), nil
			}
		}
		if stopped {
			return trace.Item{}, io.EOF
		}
		if !timing {
			timing = true
			if l.tick == nil {
				l.tick = time.NewTimer(50 * time.Millisecond)
			} else {
				l.tick.Reset(50 * time.Millisecond)
			}
		}
		select {
		case <-l.wake:
			l.take()
		case <-l.closed:
		case <-l.tick.C:
			l.mark = time.Now().Add(-l.o.Reorder).UnixNano()
			return trace.Item{Now: l.mark}, nil
		case <-done:
			l.Stop("interrupted")
			done = nil
		}
	}
}

// take moves every socket's batch to its queue (in time order: a
// socket's frames mostly come in order) and numbers them in the order
// they are taken, for ties.
func (l *Live) take() {
	for _, s := range l.socks {
		s.mu.Lock()
		b := s.pending
		if len(b) == 0 {
			s.mu.Unlock()
			continue
		}
		s.pending = l.tmpty[:0]
		s.mu.Unlock()
		if s.head > 0 && s.head == len(s.q) {
			clear(s.q)
			s.q, s.head = s.q[:0], 0
		} else if s.head > 0 && s.head >= len(s.q)/2 {
			n := copy(s.q, s.q[s.head:])
			clear(s.q[n:])
			s.q, s.head = s.q[:n], 0
		}
		first := s.head == len(s.q)
		oldHead := int64(0)
		if !first {
			oldHead = s.q[s.head].f.TS
		}
		for i := range b {
			b[i].seq = l.seq
			l.seq++
			j := len(s.q)
			s.q = append(s.q, b[i])
			for j > s.head && s.q[j-1].f.TS > b[i].f.TS {
				s.q[j] = s.q[j-1]
				j--
			}
			if j != len(s.q)-1 {
				s.q[j] = b[i]
			}
		}
		clear(b)
		l.tmpty = b
		switch {
		case first:
			s.hi = len(l.heap)
			l.heap = append(l.heap, s)
			l.up(s.hi)
		case s.q[s.head].f.TS < oldHead:
			l.up(s.hi)
		}
	}
}

func (l *Live) pop() trace.Item {
	s := l.heap[0]
	c := &s.q[s.head]
	l.cur = c.f
	data := c.data
	*c = captured{}
	s.head++
	if s.head < len(s.q) {
		l.down(0)
	} else {
		s.q, s.head = s.q[:0], 0
		last := len(l.heap) - 1
		l.swap(0, last)
		l.heap[last] = nil
		l.heap = l.heap[:last]
		s.hi = -1
		if last > 0 {
			l.down(0)
		}
	}
	l.stats[l.cur.Point].Frames++
	if l.o.Tee != nil {
		l.o.Tee(&l.cur, data)
	}
	if l.o.KeepData {
		l.kept.Frames = append(l.kept.Frames, l.cur)
		l.kept.Data = append(l.kept.Data, data)
		l.cur.Num = int32(len(l.kept.Frames))
		l.kept.Frames[len(l.kept.Frames)-1].Num = l.cur.Num
	}
	return trace.Item{Frame: &l.cur, Data: data}
}

// The heap of sockets, ordered by their first queued frame's time, then
// by the order frames were taken.
func (l *Live) less(i, j int) bool {
	a, b := &l.heap[i].q[l.heap[i].head], &l.heap[j].q[l.heap[j].head]
	return a.f.TS < b.f.TS || (a.f.TS == b.f.TS && a.seq < b.seq)
}

func (l *Live) swap(i, j int) {
	l.heap[i], l.heap[j] = l.heap[j], l.heap[i]
	l.heap[i].hi, l.heap[j].hi = i, j
}

func (l *Live) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !l.less(j, i) {
			break
		}
		l.swap(i, j)
		j = i
	}
}

func (l *Live) down(i int) {
	n := len(l.heap)
	for {
		j := 2*i + 1
		if j >= n {
			return
		}
		if j+1 < n && l.less(j+1, j) {
			j++
		}
		if !l.less(j, i) {
			return
		}
		l.swap(i, j)
		i = j
	}
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
		close(l.gone) // nobody reads any more: the readers finish
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

func firstError(st []trace.PointStat) string {
	for _, s := range st {
		if s.Error != "" {
			return s.Point.Label("") + ": " + s.Error
		}
	}
	return "no points"
}
