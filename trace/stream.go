package trace

import (
	"cmp"
	"context"
	"iter"
	"slices"
	"time"

	"github.com/meshtrace/meshtrace/topology"
)

// Item is what a Source yields: one frame (with its bytes when the
// source keeps them), or, with Frame nil, the capture time a quiet live
// capture has reached (so silent flows end).
type Item struct {
	Frame *Frame // valid until the next call
	Data  []byte
	Now   int64
}

// Source yields frames in time order (a live capture's merge, capture
// files): a live capture (trace/capture) or files (trace/pcapio).
type Source interface {
	// Next returns the next item, io.EOF at the end, or the error that
	// ended the source early (what came before it stands).
	Next(ctx context.Context) (Item, error)
	// Points are the capture points frames refer to (they may grow while
	// files are read).
	Points() []Point
	// Ignored counts frames without an IPv4 TCP/UDP packet so far.
	Ignored() int
}

// Event is one step of a trace: Ready (live), Progress, FlowUpdated,
// FlowEnded, FlowGone, then Done last.
type Event interface{ event() }

// Ready says a live capture is listening at its points (Error says
// which could not be opened): traffic from now on is seen.
type Ready struct{ Points []PointStat }

// Progress says how far the trace is (about every 64k frames, and
// every quarter second of capture time).
type Progress struct {
	Frames  int
	Ignored int
	Now     time.Time // capture time reached
}

// FlowUpdated is a flow in flight (Config.Updates), or one that ended but
// waits for what is read after the capture (Config.After). Flow.ID stays
// the same until it ends.
type FlowUpdated struct{ Flow Flow }

// FlowEnded is a flow that is over: nothing will change it. Its packets
// are forgotten.
type FlowEnded struct{ Flow Flow }

// FlowGone is a flow reported in flight that turned out to be part of
// another one (a packet seen before and after a NAT joined them).
type FlowGone struct{ ID int }

// Done ends the stream: the summary (Result without its flows: Flows
// counts them, Unanswered those a backend did not answer) and the error
// that ended it early, if any (the flows before it stand).
type Done struct {
	Result     *Result
	Flows      int
	Unanswered int
	Err        error
}

func (Ready) event()       {}
func (Progress) event()    {}
func (FlowUpdated) event() {}
func (FlowEnded) event()   {}
func (FlowGone) event()    {}
func (Done) event()        {}

// Late is what is read after a capture ends, for the held flows:
// conntrack and IPVS entries by nsKey(node, netns), and notes.
type Late struct {
	Conntrack map[string][]topology.Conntrack
	IPVS      map[string][]IPVSConn
	Notes     []string
	// Counters are what moved in the counters of the path's namespaces
	// during the capture (nil: not read): the flows that stopped are
	// attributed with them (AttributeLosses).
	Counters *CounterWindow
}

// Config is how Stream explains what it correlates.
type Config struct {
	Env     *Env // nil: files without a source
	Routes  []Route
	Options Options
	// PacketHops lists every packet's sightings in Flow.Packets.
	PacketHops bool
	// Notes go into the Result's notes, before the late ones.
	Notes []string
	// Want keeps a flow (replay's --proto and --port); nil keeps all.
	Want func(*Conn) bool
	// After, when set, runs once the source has ended (a live capture's
	// table reads: trace/capture); the flows that ended before are held
	// until then (reported as FlowUpdated when they end) and explained
	// with what it read. Memory is then that of the whole capture.
	After func(ctx context.Context) Late
	// Updates reports the flows in flight that changed, this often in
	// capture time (0: never), for a live view.
	Updates time.Duration
	// Counted, when set, is told how many flows closed complete so far,
	// each time one does (a live capture's --count).
	Counted func(n int)
	// Ended, when set, sees each flow as it ends, with its connection
	// (trace/capture names the frames of its pcapng after it).
	Ended func(fl *Flow, c *Conn)
	// Proto and Port name the traffic in the summary; "" and 0 take the
	// first flow's.
	Proto string
	Port  int
}

// Stream correlates what src yields and explains each flow as it ends:
// the events of one trace, Done last. Memory is bounded by the flows in
// flight (unless Config.After holds them). Stopping the iteration early
// is allowed.
func Stream(ctx context.Context, src Source, cfg Config) iter.Seq[Event] {
	return func(yield func(Event) bool) {
		s := &streamer{src: src, cfg: cfg, cr: NewCorrelator(cfg.Options), yield: yield}
		s.esp = newESPMatcher(cfg.Env, s.cr)
		s.a = &Analysis{Env: cfg.Env, Routes: cfg.Routes, PacketHops: cfg.PacketHops}
		s.run(ctx)
	}
}

// progressEvery is how often in capture time a stream says how far it is.
const progressEvery = 250 * time.Millisecond

type streamer struct {
	src   Source
	cfg   Config
	cr    *Correlator
	esp   *espMatcher
	a     *Analysis
	yield func(Event) bool
	stop  bool

	frames   []int // per point
	nFrames  int
	nextID   int
	held     []*Conn
	counted  int
	flows    int
	unanswer int
	first    *Flow // the flow seen first, for the summary's proto and port
	updateAt int64
	progress int64
	// cut: the source failed (a file cut short or damaged): the flows
	// in flight then are not over, what came next was not read, so
	// none gets a stop.
	cut bool
}

func (s *streamer) emit(e Event) {
	if !s.stop && !s.yield(e) {
		s.stop = true
	}
}

// feed reads the source's next item into the correlator: a frame (counted
// at its point), or the time the source has reached.
func (s *streamer) feed(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	it, err := s.src.Next(ctx)
	if err != nil {
		return err
	}
	if f := it.Frame; f != nil {
		for int(f.Point) >= len(s.frames) {
			s.frames = append(s.frames, 0)
		}
		s.frames[f.Point]++
		s.nFrames++
		s.add(f)
	} else {
		s.cr.Advance(it.Now)
	}
	return nil
}

func (s *streamer) run(ctx context.Context) {
	if s.cfg.After == nil && s.cfg.Updates == 0 && s.cfg.Counted == nil {
		s.runPiped(ctx)
		return
	}
	var err error
	for !s.stop {
		if err = s.feed(ctx); err != nil {
			break
		}
		s.ended(s.cr.Take())
		if n := s.cr.Completed(); n > s.counted {
			s.counted = n
			if s.cfg.Counted != nil {
				s.cfg.Counted(n)
			}
		}
		if s.nFrames&0xffff == 0 || s.cr.Now() >= s.progress {
			s.progress = s.cr.Now() + int64(progressEvery)
			s.emit(Progress{Frames: s.nFrames, Ignored: s.src.Ignored(), Now: tsTime(s.cr.Now())})
		}
		if s.cfg.Updates > 0 && s.cr.Now() >= s.updateAt {
			s.updateAt = s.cr.Now() + int64(s.cfg.Updates)
			s.inFlight()
		}
	}
	err = endErr(err)
	if s.stop {
		return
	}
	s.cut = s.cutBy(ctx, err)
	s.cr.Flush()
	s.ended(s.cr.Take())
	res := &Result{Proto: s.cfg.Proto, Port: s.cfg.Port, Notes: slices.Clone(s.cfg.Notes)}
	if s.cfg.After != nil {
		late := s.cfg.After(ctx)
		s.a.Conntrack, s.a.IPVS = late.Conntrack, late.IPVS
		res.Notes = append(res.Notes, late.Notes...)
		// In the order they were first seen, as the JSON lists them.
		slices.SortFunc(s.held, func(a, b *Conn) int { return cmp.Compare(a.seq, b.seq) })
		flows := make([]Flow, 0, len(s.held))
		conns := make([]*Conn, 0, len(s.held))
		for _, c := range s.held {
			if fl, ok := s.flow(c, true); ok {
				flows, conns = append(flows, fl), append(conns, c)
			}
		}
		AttributeLosses(flows, late.Counters, s.cfg.Env)
		for i := range flows {
			s.endFlow(flows[i], conns[i])
		}
		s.held = nil
	}
	s.done(res, err)
}

// ended explains the flows the correlator handed out.
func (s *streamer) ended(cs []*Conn) {
	for _, id := range s.cr.Gone() {
		s.emit(FlowGone{ID: id})
	}
	if len(cs) == 0 {
		return
	}
	s.a.Points = s.src.Points()
	for _, c := range cs {
		if s.cfg.After == nil {
			s.end(c)
			continue
		}
		s.held = append(s.held, c)
		if s.cfg.Updates > 0 {
			fl, ok := s.flow(c, true)
			if ok {
				s.emit(FlowUpdated{Flow: fl})
			}
		}
	}
}

// flow explains c; ok false when Want leaves it out.
func (s *streamer) flow(c *Conn, ended bool) (Flow, bool) {
	id := c.id
	if id == 0 {
		id = s.nextID + 1
	}
	if s.cfg.Want != nil && !s.cfg.Want(c) {
		return Flow{}, false
	}
	fl := s.a.Flow(id, c, ended)
	if c.id == 0 {
		s.nextID++
		c.id = s.nextID
	}
	return fl, true
}

func (s *streamer) end(c *Conn) {
	if fl, ok := s.flow(c, !s.cut); ok {
		s.endFlow(fl, c)
	}
}

// endFlow reports an explained flow that ended.
func (s *streamer) endFlow(fl Flow, c *Conn) {
	s.flows++
	if !fl.Answered {
		s.unanswer++
	}
	if s.first == nil || fl.seq < s.first.seq {
		f := fl
		s.first = &f
	}
	if s.cfg.Ended != nil {
		s.cfg.Ended(&fl, c)
	}
	s.emit(FlowEnded{Flow: fl})
}

// inFlight reports the flows in flight that changed.
func (s *streamer) inFlight() {
	cs := s.cr.InFlight()
	if len(cs) == 0 {
		return
	}
	s.a.Points = s.src.Points()
	for _, c := range cs {
		if fl, ok := s.flow(c, false); ok {
			s.emit(FlowUpdated{Flow: fl})
		}
	}
}

func (s *streamer) done(res *Result, err error) {
	res.Frames, res.Ignored = s.nFrames, s.src.Ignored()
	res.ESP = s.esp.stats()
	if s.cfg.Env != nil {
		res.Source = s.cfg.Env.Nodes[0].Model.Source
	}
	if f := s.first; f != nil {
		if res.Proto == "" {
			res.Proto = f.Proto
		}
		if res.Port == 0 {
			res.Port = int(f.port)
		}
	}
	points := s.src.Points()
	order := make([]int, len(points))
	for i := range order {
		order[i] = i
	}
	if o, ok := s.src.(interface{ PointOrder() []int }); ok {
		order = o.PointOrder()
	}
	for _, i := range order {
		n := 0
		if i < len(s.frames) {
			n = s.frames[i]
		}
		res.Points = append(res.Points, PointStat{Point: points[i], Frames: n})
	}
	if err != nil {
		res.Error = err.Error()
	}
	s.emit(Done{Result: res, Flows: s.flows, Unanswered: s.unanswer, Err: err})
}

// Collect runs a stream to its end and returns the batch result: the
// ended flows in the order they were first seen, numbered from 1 (what
// `-o json` prints), and the error of Done.
func Collect(events iter.Seq[Event]) (*Result, error) {
	var flows []Flow
	res := &Result{}
	var err error
	for e := range events {
		switch e := e.(type) {
		case FlowEnded:
			flows = append(flows, e.Flow)
		case Done:
			res, err = e.Result, e.Err
		}
	}
	Number(flows)
	res.Flows = flows
	if res.Flows == nil {
		res.Flows = []Flow{}
	}
	return res, err
}

// Number orders flows by their first sighting and numbers them from 1.
func Number(flows []Flow) {
	slices.SortStableFunc(flows, func(a, b Flow) int { return cmp.Compare(a.seq, b.seq) })
	for i := range flows {
		flows[i].ID = i + 1
	}
}

// add files one frame: an ESP packet with the ESP matcher (esp.go), any
// other with the correlator, and, from a vxlan device, with the matcher too.
func (s *streamer) add(f *Frame) {
	if f.IsESP() {
		s.esp.esp(f, s.src.Points())
		return
	}
	s.cr.Add(f)
	s.esp.innerFrame(f, s.cr.lastLP, s.src.Points())
}
