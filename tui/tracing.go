package tui

import (
	"context"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/tui/flows"
	"github.com/meshtrace/meshtrace/tui/pathview"
	"github.com/meshtrace/meshtrace/tui/traceview"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// traceMsg carries one update of the trace started as gen; closed says
// the channel is done.
type traceMsg struct {
	gen    int
	u      flows.Update
	closed bool
	ch     <-chan flows.Update
}

func waitTrace(gen int, ch <-chan flows.Update) tea.Cmd {
	return func() tea.Msg {
		u, ok := <-ch
		return traceMsg{gen: gen, u: u, closed: !ok, ch: ch}
	}
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
	req := flows.Request{Query: m.entry.Query, Probe: probe, Count: m.cfg.ProbeCount}
	ch, err := m.cfg.Tracer.Start(ctx, req)
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
	m.conns, m.marked, m.traceReady = nil, 0, false
	m.trace = m.trace.SetState(traceview.Running, title, "").SetConns(nil, 0)
	m.status = "trace started (s stops, 3 shows connections)"
	return m.markPath(), waitTrace(m.traceGen, ch)
}

// stopTrace cancels the running trace; its last update still arrives.
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
	u := msg.u
	m.conns = u.Conns
	m.trace = m.trace.SetConns(u.Conns, u.Frames)
	if u.Ready {
		m.traceReady = true
		m.trace = m.trace.SetState(traceview.Running, traceTitle(m), strings.Join(u.Notes, "; "))
	}
	if u.Done {
		note := ""
		if len(u.Notes) > 0 {
			note = u.Notes[len(u.Notes)-1]
		}
		st := traceview.Done
		if u.Err != nil {
			st, note = traceview.Failed, u.Err.Error()
		}
		m.trace = m.trace.SetState(st, traceTitle(m), note)
		m.status = ""
		if m.cfg.ReplayTitle == "" && len(u.Conns) > 0 {
			// step through what was just captured (4)
			m.replay = m.replay.SetConns("live trace "+traceTitle(m), u.Conns, nil)
		}
	}
	return m.markPath(), waitTrace(msg.gen, msg.ch)
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
	var c *flows.Conn
	for i := range m.conns {
		if m.conns[i].ID == m.marked || (m.marked == 0 && i == len(m.conns)-1) {
			c = &m.conns[i]
		}
	}
	if c != nil {
		mk.Seen = map[string]bool{}
		for _, hs := range [][]flows.Sighting{c.Hops, c.ReplyHops} {
			for _, h := range hs {
				if h.Node != "" {
					continue // another node: not on this drawing
				}
				mk.Seen[h.Netns], mk.Seen[h.Netns+"/"+h.Ifname] = true, true
			}
		}
		if c.Lost != nil && c.Lost.Node == "" {
			mk.Lost = c.Lost.Netns
		}
		if c.Answered {
			mk.Reached = c.Backend
		}
		mk.Status += fmt.Sprintf(" · #%d %s", c.ID, traceview.Outcome(*c))
	}
	m.path = m.path.SetMarks(mk)
	return m
}
