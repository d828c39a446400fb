package tracesrc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/net/bpf"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/flows"
)

// Live runs live traces with trace.Run. While the capture runs it
// decodes what the sockets deliver (through a teeing Opener) and sends a
// snapshot of the connections every Every, so that they appear as they
// are seen; the last update is trace's own result.
type Live struct {
	// Config builds the trace of a request: the source's Env, the
	// client, the probe, and the Opener (required: the real one is
	// trace.AFPacket{}).
	Config func(ctx context.Context, r flows.Request) (trace.Config, error)
	// Every is the snapshot interval (default 250 ms).
	Every time.Duration
	// Quiet is how long an unanswered connection must be silent before a
	// snapshot calls it lost (default 1 s); the final result decides.
	Quiet time.Duration
}

var _ flows.Tracer = Live{}

// Start implements flows.Tracer.
func (l Live) Start(ctx context.Context, r flows.Request) (<-chan flows.Update, error) {
	if l.Config == nil {
		return nil, errors.New("tracesrc: no trace configuration")
	}
	ch := make(chan flows.Update, 1)
	go l.run(ctx, r, ch)
	return ch, nil
}

func (l Live) run(ctx context.Context, r flows.Request, ch chan<- flows.Update) {
	defer close(ch)
	send := func(u flows.Update) {
		// the UI reads until the channel closes; if it is gone (the
		// program quit), give up after a while.
		select {
		case ch <- u:
		case <-time.After(5 * time.Second):
		}
	}
	cfg, err := l.Config(ctx, r)
	if err != nil {
		send(flows.Update{Done: true, Err: err})
		return
	}
	if cfg.Env == nil || cfg.Opener == nil {
		send(flows.Update{Done: true, Err: errors.New("tracesrc: trace config without env or opener")})
		return
	}
	plan, err := trace.Plan(cfg.Env, cfg.Client)
	if err != nil {
		send(flows.Update{Done: true, Err: err})
		return
	}
	tee := &teeOpener{inner: cfg.Opener, index: map[[3]string]int32{}}
	for i, p := range plan.Points {
		tee.index[[3]string{p.Node, p.Netns, p.Ifname}] = int32(i)
	}
	cfg.Opener = tee
	cfg.PacketHops = true // the replay-style stepping needs every packet's hops
	type result struct {
		res *trace.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := trace.Run(ctx, cfg)
		done <- result{res, err}
	}()
	every := l.Every
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	quiet := l.Quiet
	if quiet <= 0 {
		quiet = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	primary := cfg.Env.Primary()
	seen := 0
	var last []flows.Conn // the latest snapshot
	ready := false
	for {
		select {
		case <-tick.C:
			if !ready && tee.ready(2*len(plan.Points)) {
				ready = true
				send(flows.Update{Ready: true, Conns: last, Frames: seen,
					Notes: []string{fmt.Sprintf("capturing at %d points", len(plan.Points))}})
			}
			frames := tee.frames()
			if len(frames) == seen {
				continue
			}
			seen = len(frames)
			conns := snapshot(cfg.Env, plan, frames, primary, quiet)
			last = conns
			select {
			case ch <- flows.Update{Conns: conns, Frames: len(frames)}:
			default: // the UI is behind: the next snapshot has it all
			}
		case rs := <-done:
			if rs.err != nil {
				// what was seen stays on screen with the error
				send(flows.Update{Done: true, Err: rs.err, Frames: seen, Conns: last})
				return
			}
			u := flows.Update{Conns: FromResult(rs.res, primary), Frames: rs.res.Frames, Done: true, Notes: rs.res.Notes}
			for _, p := range rs.res.Probes {
				if p.Error != "" {
					u.Notes = append(u.Notes, fmt.Sprintf("probe %s -> %s: %s", p.From, p.To, p.Error))
				}
			}
			if rs.res.Error != "" {
				u.Err = errors.New(rs.res.Error)
			}
			send(u)
			return
		}
	}
}

// snapshot correlates the frames seen so far. A connection that is not
// answered yet is only called lost once it has been quiet for a while.
func snapshot(env *trace.Env, plan *trace.CapturePlan, frames []trace.Frame, primary string, quiet time.Duration) []flows.Conn {
	sort.SliceStable(frames, func(i, j int) bool { return frames[i].TS < frames[j].TS })
	conns := trace.Correlate(frames, trace.Options{ServerPorts: plan.Filter.Ports})
	a := &trace.Analysis{Env: env, Points: plan.Points, Routes: plan.Routes, Frames: frames, PacketHops: true}
	newest := time.Unix(0, frames[len(frames)-1].TS)
	out := FromResult(&trace.Result{Flows: a.Flows(conns)}, primary)
	for i := range out {
		if out[i].Lost != nil && newest.Sub(lastSeen(out[i])) < quiet {
			out[i].Lost = nil
		}
	}
	return out
}

func lastSeen(c flows.Conn) time.Time {
	var t time.Time
	for _, p := range c.Packets {
		for _, h := range p.Hops {
			if h.TS.After(t) {
				t = h.TS
			}
		}
	}
	return t
}

// teeOpener opens the real sockets and keeps a decoded copy of every
// frame they deliver.
type teeOpener struct {
	inner trace.Opener
	index map[[3]string]int32
	mu    sync.Mutex
	got   []trace.Frame
	// opens counts Open calls, last is when the latest returned: trace
	// keeps only frames from after the last socket opened, and so do the
	// snapshots.
	opens int
	last  time.Time
}

func (t *teeOpener) Open(p trace.Point, dir trace.Dir, prog []bpf.RawInstruction) (trace.Socket, error) {
	s, err := t.inner.Open(p, dir, prog)
	t.mu.Lock()
	t.opens++
	t.last = time.Now()
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	idx, ok := t.index[[3]string{p.Node, p.Netns, p.Ifname}]
	if !ok {
		return s, nil
	}
	return &teeSocket{Socket: s, t: t, point: idx, dir: dir}, nil
}

// frames are the frames seen since the last socket opened.
func (t *teeOpener) frames() []trace.Frame {
	t.mu.Lock()
	defer t.mu.Unlock()
	from := t.last.UnixNano()
	out := make([]trace.Frame, 0, len(t.got))
	for _, f := range t.got {
		if f.TS >= from {
			out = append(out, f)
		}
	}
	return out
}

// ready: every socket is open (want of them), or none opened for a
// while (a point that fails skips its second direction).
func (t *teeOpener) ready(want int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.opens >= want || (t.opens > 0 && time.Since(t.last) > 200*time.Millisecond)
}

type teeSocket struct {
	trace.Socket
	t     *teeOpener
	point int32
	dir   trace.Dir
}

func (s *teeSocket) Next() ([]byte, time.Time, error) {
	data, ts, err := s.Socket.Next()
	if err != nil {
		return data, ts, err
	}
	var f trace.Frame
	if trace.Decode(trace.LinkEthernet, data, &f) == nil {
		f.Point, f.Dir, f.TS = s.point, s.dir, ts.UnixNano()
		s.t.mu.Lock()
		if len(s.t.got) < 200_000 {
			s.t.got = append(s.t.got, f)
		}
		s.t.mu.Unlock()
	}
	return data, ts, nil
}
