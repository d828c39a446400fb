package capture

import (
	"context"
	"fmt"
	"io"
	"iter"
	"slices"
	"time"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/pcapio"
)

// Tables reads a namespace's conntrack and IPVS connection tables, for
// the cross-check after a capture.
type Tables interface {
	Conntrack(netnsPath string) ([]topology.Conntrack, error)
	// IPVSConns returns nil, nil when the kernel has no IPVS.
	IPVSConns(netnsPath string) ([]trace.IPVSConn, error)
}

// Config is one live trace.
type Config struct {
	Env    *trace.Env
	Client *trace.Client // capture in the client's namespace too
	Probe  *Probe        // make the traffic
	Live   Options
	Opener Opener // nil = AFPacket{}
	Tables Tables // nil = Kernel{}
	// PacketHops lists every packet's sightings in the flows.
	PacketHops bool
	// Updates reports flows in flight this often (a live view).
	Updates time.Duration
	// Pcap receives the capture as pcapng when set, once it is over
	// (each frame's comment names its flow and hop, so it waits for
	// them).
	Pcap io.Writer
	// Before runs once the capture plan is known, before the first
	// socket opens; After once the capture has ended, before the kernel's
	// tables are read. A hook's error ends the trace (Before) or becomes
	// a note (After). For snapshots taken around the capture (counters).
	Before func(ctx context.Context, plan *trace.CapturePlan) error
	After  func(ctx context.Context, plan *trace.CapturePlan) error
	// Counters, when set, snapshots the counters of every namespace on
	// the plan before the sockets open and after the capture ends: the
	// flows that stopped name what moved (Flow.Loss). nil: no loss is
	// attributed.
	Counters CounterReader
}

// Run captures at every point of the plan, correlates and explains, as a
// stream of events (trace.Ready once the sockets listen, Done last with
// the points' stats, the probes and the notes). The flows are held until
// the capture ends: they are explained with the conntrack and IPVS
// entries read then, in the order they were first seen. Cancelling ctx
// stops the capture (reason "interrupted"); the flows seen are still
// reported.
func Run(ctx context.Context, cfg Config) iter.Seq[trace.Event] {
	return func(yield func(trace.Event) bool) {
		fail := func(err error) { yield(trace.Done{Result: &trace.Result{Flows: []trace.Flow{}}, Err: err}) }
		env := cfg.Env
		plan, err := trace.Plan(env, cfg.Client)
		if err != nil {
			fail(err)
			return
		}
		if cfg.Before != nil {
			if err := cfg.Before(ctx, plan); err != nil {
				fail(err)
				return
			}
		}
		var before *CounterSnap
		var snapNotes []string
		if cfg.Counters != nil {
			before = SnapCounters(ctx, cfg.Counters, planNetns(plan), &snapNotes)
		}
		op := cfg.Opener
		if op == nil {
			op = AFPacket{}
		}
		lo := cfg.Live
		lo.KeepData = lo.KeepData || cfg.Pcap != nil
		if cfg.Probe != nil {
			lo.Probe = cfg.Probe.Run
		}
		live, err := Open(plan, op, lo)
		if err != nil {
			fail(err)
			return
		}
		defer live.Close()
		ready := slices.Clone(live.stats)
		if !yield(trace.Ready{Points: ready}) {
			return
		}
		probes := make(chan []trace.ProbeResult, 1)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go watch(cctx, live, live.o, probes)

		var comments []string
		tables := cfg.Tables
		if tables == nil {
			tables = Kernel{}
		}
		scfg := trace.Config{
			Env: env, Routes: plan.Routes, Options: trace.Options{ServerPorts: plan.Filter.Ports},
			PacketHops: cfg.PacketHops, Updates: cfg.Updates, Proto: env.Proto, Port: env.Port,
		}
		if lo.Count > 0 && lo.Probe == nil {
			scfg.Counted = func(n int) {
				if n >= lo.Count {
					// the last sightings of its last packets come just after
					time.AfterFunc(200*time.Millisecond, func() { live.Stop("count") })
				}
			}
		}
		scfg.After = func(ctx context.Context) trace.Late {
			live.Close()
			var late trace.Late
			late.Notes = append(slices.Clone(plan.Notes), fmt.Sprintf("capture stopped: %s; filter: %s ports %s%s", live.Stopped(),
				trace.ProtoName(plan.Filter.Proto), portsString(plan.Filter.Ports), map[bool]string{true: " and vxlan", false: ""}[plan.Filter.VXLAN]))
			if before != nil {
				after := SnapCounters(ctx, cfg.Counters, planNetns(plan), &snapNotes)
				late.Counters = Window(before, after)
				late.Notes = append(late.Notes, snapNotes...)
			}
			if cfg.After != nil {
				if err := cfg.After(ctx, plan); err != nil {
					late.Notes = append(late.Notes, err.Error())
				}
			}
			late.Conntrack, late.IPVS, late.Notes = readTables(tables, plan.Points, late.Notes)
			if cfg.Pcap != nil {
				comments = make([]string, len(live.Kept().Frames))
			}
			return late
		}
		if cfg.Pcap != nil {
			scfg.Ended = func(fl *trace.Flow, c *trace.Conn) {
				pcapio.Comments(comments, fl.ID, c, plan.Points, env.Primary())
			}
		}
		// The capture stops on ctx itself: the stream reads on to the end.
		for e := range trace.Stream(context.WithoutCancel(ctx), live, scfg) {
			if d, ok := e.(trace.Done); ok {
				d.Result.Source = env.Nodes[0].Model.Source
				d.Result.Points = live.Close()
				select {
				case d.Result.Probes = <-probes:
				default:
				}
				if cfg.Pcap != nil && d.Err == nil {
					if _, err := pcapio.WritePcapng(cfg.Pcap, env.Primary(), live.Kept(), comments); err != nil {
						d.Err = err
						d.Result.Error = err.Error()
					}
				}
				e = d
			}
			if !yield(e) {
				return
			}
		}
	}
}

// watch runs the probe and stops the capture when the options say:
// timeout, the probe done (after Linger), the frame limit, or ctx.
func watch(ctx context.Context, live *Live, o Options, probes chan<- []trace.ProbeResult) {
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	probeDone := make(chan []trace.ProbeResult, 1)
	if o.Probe != nil {
		go func() { probeDone <- o.Probe(ctx) }()
	}
	var linger <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			live.Stop("interrupted")
			return
		case <-deadline:
			live.Stop("timeout")
			return
		case pr := <-probeDone:
			probes <- pr
			linger = time.After(o.Linger)
		case <-linger:
			live.Stop("probe")
			return
		case <-live.stopCh:
			return
		}
	}
}

// Trace runs a live trace to its end and returns the batch result (what
// `trace -o json` prints): trace.Collect over Run.
func Trace(ctx context.Context, cfg Config) (*trace.Result, error) {
	return trace.Collect(Run(ctx, cfg))
}

// readTables reads conntrack and IPVS connections once per namespace of
// the capture points.
func readTables(t Tables, points []trace.Point, notes []string) (map[string][]topology.Conntrack, map[string][]trace.IPVSConn, []string) {
	ct := map[string][]topology.Conntrack{}
	vs := map[string][]trace.IPVSConn{}
	done := map[string]bool{}
	for _, p := range points {
		k := trace.NsKey(p.Node, p.Netns)
		if done[k] || p.Path == "" {
			continue
		}
		done[k] = true
		if es, err := t.Conntrack(p.Path); err != nil {
			if !slices.Contains(notes, err.Error()) { // a missing module says so once
				notes = append(notes, err.Error())
			}
		} else {
			ct[k] = es
		}
		if es, err := t.IPVSConns(p.Path); err != nil {
			notes = append(notes, err.Error())
		} else if es != nil {
			vs[k] = es
		}
	}
	return ct, vs, notes
}

// portsString renders a filter's ports for notes.
func portsString(ps []uint16) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(p)
	}
	return s
}
