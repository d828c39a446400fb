package trace

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
)

// ErrTimeout is what Socket.Next returns when nothing arrived within its
// poll interval.
var ErrTimeout = errors.New("capture poll timeout")

// Opener opens capture sockets: the real one an AF_PACKET socket inside
// the point's namespace (capture_linux.go), tests a fake.
type Opener interface {
	// Open returns a socket bound to the point's interface that keeps the
	// packets prog accepts; it is ready (filter attached) on return.
	Open(p Point, dir Dir, prog []bpf.RawInstruction) (Socket, error)
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

// LiveOptions control a live capture.
type LiveOptions struct {
	// Count stops the capture once this many flows are complete (0 = run
	// until Timeout or the context ends).
	Count int
	// Timeout bounds the capture (0 = until Count or the context).
	Timeout time.Duration
	// Probe, when set, runs once every socket is ready; the capture ends
	// Linger after it returns.
	Probe  func(ctx context.Context) []ProbeResult
	Linger time.Duration
	// KeepData keeps every frame's bytes (for --pcap).
	KeepData bool
	// MaxFrames bounds memory (default 2,000,000 frames).
	MaxFrames int
	// Correlate tunes the completeness check.
	Correlate Options
}

// LiveCapture is what Capture returns.
type LiveCapture struct {
	Capture
	Stats  []PointStat
	Probes []ProbeResult
	// Stopped says why the capture ended: count, timeout, probe,
	// interrupted, limit.
	Stopped string
	Ignored int
}

// sock is one open socket and what its reader collected.
type sock struct {
	point int
	dir   Dir
	s     Socket
	mu    sync.Mutex // guards frames, data, err (taken per frame, uncontended)
	// frames and data are appended by the socket's reader only.
	frames  []Frame
	data    [][]byte
	err     string
	ignored int
}

// Live captures at every point of the plan, both directions, until the
// options say stop. It opens every socket before the probe starts and
// closes all of them before returning; nothing else is changed on the
// system. A point that cannot be opened is reported in its stat, not
// fatal, unless no point opens. Each socket has its own reader and its
// own buffer, so readers never wait on each other.
func Live(ctx context.Context, plan *CapturePlan, op Opener, o LiveOptions) (*LiveCapture, error) {
	if o.MaxFrames <= 0 {
		o.MaxFrames = 2_000_000
	}
	if o.Linger <= 0 {
		o.Linger = 300 * time.Millisecond
	}
	lc := &LiveCapture{Capture: Capture{Points: plan.Points}}
	lc.Stats = make([]PointStat, len(plan.Points))
	for i, p := range plan.Points {
		lc.Stats[i].Point = p
	}
	var socks []*sock
	defer func() {
		for _, s := range socks {
			s.s.Close()
		}
	}()
	for i, p := range plan.Points {
		for _, dir := range []Dir{DirIn, DirOut} {
			prog, err := plan.Filter.Assemble(dir)
			if err != nil {
				return nil, err
			}
			s, err := op.Open(p, dir, prog)
			if err != nil {
				lc.Stats[i].Error = err.Error()
				break
			}
			socks = append(socks, &sock{point: i, dir: dir, s: s})
		}
	}
	if len(socks) == 0 {
		return nil, fmt.Errorf("trace: no capture point could be opened (first: %s)", firstError(lc.Stats))
	}
	readyAt := time.Now().UnixNano()

	var (
		stop    = make(chan struct{})
		arrived = make(chan struct{}, 1)
		wg      sync.WaitGroup
		total   atomic.Int64
		full    atomic.Bool
	)
	for _, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.read(stop, readyAt, o, &total, &full, arrived)
		}()
	}
	snapshot := func() []Frame {
		var out []Frame
		for _, s := range socks {
			s.mu.Lock()
			fs := s.frames
			s.mu.Unlock()
			out = append(out, fs...) // elements below len never change
		}
		return out
	}
	lc.Stopped = wait(ctx, o, lc, arrived, &full, snapshot)
	close(stop)
	wg.Wait()
	for _, s := range socks {
		st := &lc.Stats[s.point]
		st.Drops += s.s.Drops()
		st.Frames += len(s.frames)
		if s.err != "" {
			st.Error = s.err
		}
		lc.Ignored += s.ignored
		lc.Frames = append(lc.Frames, s.frames...)
		if o.KeepData {
			lc.Data = append(lc.Data, s.data...)
		}
	}
	return lc, nil
}

// read is a socket's reader loop.
func (s *sock) read(stop <-chan struct{}, readyAt int64, o LiveOptions, total *atomic.Int64, full *atomic.Bool, arrived chan<- struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		data, ts, err := s.s.Next()
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			s.mu.Lock()
			s.err = err.Error()
			s.mu.Unlock()
			return
		}
		t := ts.UnixNano()
		if t < readyAt { // queued before the filter was attached
			continue
		}
		var f Frame
		if Decode(LinkEthernet, data, &f) != nil {
			s.ignored++
			continue
		}
		if total.Add(1) > int64(o.MaxFrames) {
			full.Store(true)
			continue
		}
		f.Point, f.Dir, f.TS = int32(s.point), s.dir, t
		var keep []byte
		if o.KeepData {
			keep = append([]byte(nil), data...)
		}
		s.mu.Lock()
		s.frames = append(s.frames, f)
		if o.KeepData {
			s.data = append(s.data, keep)
		}
		s.mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	}
}

// wait runs the probe and returns when the capture should end.
func wait(ctx context.Context, o LiveOptions, lc *LiveCapture, arrived <-chan struct{}, full *atomic.Bool, snapshot func() []Frame) string {
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	probeDone := make(chan []ProbeResult, 1)
	if o.Probe != nil {
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { probeDone <- o.Probe(pctx) }()
	}
	var linger <-chan time.Time
	// Counting complete flows correlates everything captured so far:
	// cheap for a probe's few hundred frames, not under load, so the
	// check backs off as the capture grows.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	dirty := false
	var nextCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return "interrupted"
		case <-deadline:
			return "timeout"
		case pr := <-probeDone:
			lc.Probes = pr
			linger = time.After(o.Linger)
		case <-linger:
			return "probe"
		case <-arrived:
			dirty = true
		case now := <-tick.C:
			if full.Load() {
				return "limit"
			}
			if !dirty || now.Before(nextCheck) || o.Count == 0 || o.Probe != nil {
				continue
			}
			dirty = false
			t0 := time.Now()
			if completeFlows(snapshot(), o.Correlate) >= o.Count {
				return "count"
			}
			nextCheck = time.Now().Add(10 * time.Since(t0))
		}
	}
}

func completeFlows(frames []Frame, o Options) int {
	n := 0
	for _, c := range Correlate(frames, o) {
		if complete(c) {
			n++
		}
	}
	return n
}

func firstError(st []PointStat) string {
	for _, s := range st {
		if s.Error != "" {
			return s.Point.Label("") + ": " + s.Error
		}
	}
	return "no points"
}
