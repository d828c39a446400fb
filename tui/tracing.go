package tui

import (
	"context"
	"fmt"
	"slices"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/pathview"
	"github.com/meshtrace/meshtrace/tui/traceview"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// traceMsg carries the events of the trace started as gen that came
// since the last one; closed says the stream is over.
type traceMsg struct {
	gen    int
	events []trace.Event
	closed bool
	ch     <-chan trace.Event
}

// maxBatch bounds the events one message carries.
const maxBatch = 512

// waitTrace waits for the next events: one, and whatever else already
// came (one redraw for a burst of flow updates).
func waitTrace(gen int, ch <-chan trace.Event) tea.Cmd {
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return traceMsg{gen: gen, closed: true, ch: ch}
		}
		msg := traceMsg{gen: gen, events: []trace.Event{e}, ch: ch}
		for len(msg.events) < maxBatch {
			select {
			case e, ok := <-ch:
				if !ok {
					return msg // the next wait says closed
				}
				msg.events = append(msg.events, e)
			default:
				return msg
			}
		}
		return msg
	}
}

// pump runs a trace's events into a channel the UI reads; if the UI is
// gone (the program quit), it gives up after a while, which stops the
// trace.
func pump(events func(yield func(trace.Event) bool)) <-chan trace.Event {
	ch := make(chan trace.Event, 64)
	go func() {
		defer close(ch)
		for e := range events {
			select {
			case ch <- e:
			case <-time.After(5 * time.Second):
				return
			}
		}
	}()
	return ch
}

// startTrace starts a live trace of the open path's port.
func (m Model) startTrace(probe bool) (tea.Model, tea.Cmd) {
	switch {
	case m.cfg.Tracer == nil:
		m.status = "live trace needs a live source: this host or --mesh (as root)"
		return m, nil
	case m.entry == nil:
		m.status = "open a published port's path first"
		return m, nil
	case m.entry.VIP():
		m.status = "live trace follows published ports; this is a VIP path"
		return m, nil
	}
	m = m.stopTrace()
	ctx, cancel := context.WithCancel(context.Background())
	req := TraceRequest{Query: m.entry.Query, Probe: probe, Count: m.cfg.ProbeCount}
	tr, err := m.cfg.Tracer.Start(ctx, req)
	title := m.entry.Title()
	if probe {
		title += fmt.Sprintf(" with probe ×%d", req.Count)
	}
	if err != nil {
		cancel()
		m.trace = m.trace.SetState(traceview.Failed, title, err.Error())
		m.status = "trace: " + err.Error()
		return m, nil
	}
	m.traceGen++
	m.traceCancel = cancel
	m.conns, m.marked, m.traceReady, m.traceFrames, m.tracePrimary = nil, 0, false, 0, tr.Primary
	m.trace = m.trace.SetState(traceview.Running, title, "").SetPrimary(tr.Primary).SetConns(nil, 0)
	m.status = "trace started (s stops, 3 shows connections)"
	return m.markPath(), waitTrace(m.traceGen, pump(tr.Events))
}

// stopTrace cancels the running trace; its last events still arrive.
func (m Model) stopTrace() Model {
	if m.traceCancel != nil {
		m.traceCancel()
		m.traceCancel = nil
	}
	return m
}

func (m Model) onTrace(msg traceMsg) (tea.Model, tea.Cmd) {
	if msg.gen != m.traceGen {
		return m, nil // an earlier trace's leftovers
	}
	if msg.closed {
		if m.trace.State() == traceview.Running {
			m.trace = m.trace.SetState(traceview.Done, traceTitle(m), "")
		}
		m.traceCancel = nil
		return m.markPath(), nil
	}
	m.conns = slices.Clone(m.conns) // the views hold the previous slice
	for _, e := range msg.events {
		m = m.onEvent(e)
	}
	m.trace = m.trace.SetConns(m.conns, m.traceFrames)
	return m.markPath(), waitTrace(msg.gen, msg.ch)
}

// onEvent applies one event of the live trace: flows are kept by ID, in
// the order they first showed.
func (m Model) onEvent(e trace.Event) Model {
	upsert := func(f trace.Flow) {
		i := slices.IndexFunc(m.conns, func(c trace.Flow) bool { return c.ID == f.ID })
		if i < 0 {
			m.conns = append(m.conns, f)
		} else {
			m.conns[i] = f
		}
	}
	switch e := e.(type) {
	case trace.Ready:
		m.traceReady = true
		m.trace = m.trace.SetState(traceview.Running, traceTitle(m), fmt.Sprintf("capturing at %d points", len(e.Points)))
	case trace.Progress:
		m.traceFrames = e.Frames
	case trace.FlowUpdated:
		upsert(e.Flow)
	case trace.FlowEnded:
		upsert(e.Flow)
	case trace.FlowGone:
		m.conns = slices.DeleteFunc(m.conns, func(c trace.Flow) bool { return c.ID == e.ID })
	case trace.Done:
		notes := e.Result.Notes
		for _, p := range e.Result.Probes {
			if p.Error != "" {
				notes = append(notes, fmt.Sprintf("probe %s -> %s: %s", p.From, p.To, p.Error))
			}
		}
		m.traceFrames = e.Result.Frames
		note := ""
		if len(notes) > 0 {
			note = notes[len(notes)-1]
		}
		st := traceview.Done
		if e.Err != nil {
			st, note = traceview.Failed, e.Err.Error()
		}
		m.trace = m.trace.SetState(st, traceTitle(m), note)
		m.status = ""
		if m.cfg.ReplayTitle == "" && len(m.conns) > 0 {
			// step through what was just captured (4)
			m.replay = m.replay.SetConns("live trace "+traceTitle(m), m.conns, m.tracePrimary, nil)
		}
	}
	return m
}

func traceTitle(m Model) string {
	if m.entry == nil {
		return ""
	}
	return m.entry.Title()
}

// markPath shows the marked connection (or the newest) on the path.
func (m Model) markPath() Model {
	if m.trace.State() == traceview.Idle {
		return m
	}
	st := map[traceview.State]string{traceview.Running: "starting", traceview.Done: "done", traceview.Failed: "failed"}[m.trace.State()]
	if m.trace.State() == traceview.Running && m.traceReady {
		st = "capturing"
	}
	mk := pathview.Marks{Status: fmt.Sprintf("trace %s · %s", st, ui.Count(len(m.conns), "connection"))}
	var c *trace.Flow
	for i := range m.conns {
		if m.conns[i].ID == m.marked || (m.marked == 0 && i == len(m.conns)-1) {
			c = &m.conns[i]
		}
	}
	if c != nil {
		mk.Seen = map[string]bool{}
		for _, hs := range [][]trace.Hop{c.Hops, c.ReplyHops} {
			for _, h := range hs {
				if traceview.Node(h.Node, m.tracePrimary) != "" {
					continue // another node: not on this drawing
				}
				mk.Seen[h.Netns], mk.Seen[h.Netns+"/"+h.Ifname] = true, true
			}
		}
		if s := c.Stop; s != nil && traceview.Node(s.Node, m.tracePrimary) == "" {
			mk.Lost = s.Netns
		}
		if c.Answered && c.Backend != nil {
			mk.Reached = c.Backend.IP
		}
		mk.Status += fmt.Sprintf(" · #%d %s", c.ID, traceview.Outcome(*c, m.tracePrimary))
	}
	m.path = m.path.SetMarks(mk)
	return m
}
