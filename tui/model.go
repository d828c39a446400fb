// Package tui is meshtrace's terminal interface: the root model that owns
// the screen and composes the components (tui/topo, tui/ports,
// tui/pathview, tui/traceview, tui/replay, tui/help), refreshes the model
// in the background, and runs live traces through a Tracer, whose events
// (package trace's stream) it shows as they come.
package tui

import (
	"context"
	"iter"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/help"
	"github.com/meshtrace/meshtrace/tui/pathview"
	"github.com/meshtrace/meshtrace/tui/ports"
	"github.com/meshtrace/meshtrace/tui/replay"
	"github.com/meshtrace/meshtrace/tui/topo"
	"github.com/meshtrace/meshtrace/tui/traceview"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// Config is what the interface shows and how it gets it.
type Config struct {
	// Source names where the model comes from, for the title bar.
	Source string
	// Load reads the model (classified); nil when there is none (a
	// replay without a source). It runs off the UI goroutine.
	Load func(ctx context.Context) (*topology.Model, error)
	// Interval is how often the model is re-read; 0 reads it once.
	Interval time.Duration
	// Tracer runs live traces; nil when the source cannot be traced.
	Tracer Tracer
	// ProbeCount is how many connections a probe makes (default 3).
	ProbeCount int
	// Replay is a capture's flows (with every packet's hops),
	// ReplayTitle its files, ReplayPrimary the node the path is drawn
	// for and ReplayErr a read error.
	Replay        []trace.Flow
	ReplayTitle   string
	ReplayPrimary string
	ReplayErr     error
	// Color enables colour (false under NO_COLOR: every state still has
	// a text marker).
	Color bool
	// Now is the clock (tests fix it).
	Now func() time.Time
}

// TraceRequest asks for a live trace of a published port.
type TraceRequest struct {
	Query topology.Query
	// Probe makes the traffic (Count connections).
	Probe bool
	Count int
}

// Trace is a live trace started: its events (trace/capture.Run's, with
// flows in flight reported as they change) and the node the path is
// drawn for (its names go without the node).
type Trace struct {
	Events  iter.Seq[trace.Event]
	Primary string
}

// Tracer starts live traces. Start must not block: the events are read
// off the UI goroutine; cancelling ctx stops the capture, and the events
// then run to their Done.
type Tracer interface {
	Start(ctx context.Context, r TraceRequest) (Trace, error)
}

// Tab is one screen.
type Tab int

// The screens.
const (
	TabTopology Tab = iota
	TabPaths
	TabTrace
	TabReplay
)

var tabNames = []string{"topology", "paths", "trace", "replay"}

// wide is the width from which the port list and the path view are
// shown side by side.
const wide = 140

// Model is the root model: it owns the screen.
type Model struct {
	cfg   Config
	theme ui.Theme
	w, h  int
	tab   Tab

	topo   topo.Model
	pub    ports.Published // the first screen's published ports
	ports  ports.Model
	path   pathview.Model
	trace  traceview.Model
	replay replay.Model
	help   help.Model

	showHelp  bool
	filtering bool
	filter    string
	status    string // one-line feedback in the footer

	model    *topology.Model
	changes  delta.Set
	loadedAt time.Time
	loading  bool
	loadErr  error

	entry    *ports.Entry // the path shown
	pathOpen bool         // narrow: the path replaces the list; wide: it has the focus

	traceCancel  context.CancelFunc
	traceGen     int
	traceReady   bool   // the capture is listening
	tracePrimary string // the node the trace's names are relative to
	traceFrames  int
	conns        []trace.Flow
	marked       int // the connection marked on the path (ID), 0 = newest
}

// New builds the root model.
func New(cfg Config) Model {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProbeCount <= 0 {
		cfg.ProbeCount = 3
	}
	th := ui.New(cfg.Color)
	m := Model{
		cfg: cfg, theme: th, w: 80, h: 24,
		topo:   topo.New(topo.WithTheme(th)),
		pub:    ports.NewPublished(ports.WithTheme(th)),
		ports:  ports.New(ports.WithTheme(th)),
		path:   pathview.New(pathview.WithTheme(th)),
		trace:  traceview.New(traceview.WithTheme(th)),
		replay: replay.New(replay.WithTheme(th)),
		help:   help.New(nil, help.WithTheme(th)),
	}
	m.replay = m.replay.SetConns(cfg.ReplayTitle, cfg.Replay, cfg.ReplayPrimary, cfg.ReplayErr)
	m.loading = cfg.Load != nil
	if cfg.Load == nil {
		m.ports = m.ports.SetEntries(nil)
		m.pub = m.pub.SetEntries(nil)
		if cfg.ReplayTitle != "" {
			m.tab = TabReplay
		}
	}
	return m.resize()
}

// WithModel shows a reading at once (tests and benchmarks; the program
// loads through Config.Load).
func (m Model) WithModel(tm *topology.Model) Model {
	return m.apply(loadedMsg{model: tm, entries: ports.Build(tm), changes: delta.Compare(m.model, tm), at: m.cfg.Now()})
}

// Init starts the first reading.
func (m Model) Init() tea.Cmd {
	if m.cfg.Load == nil {
		return nil
	}
	return m.loadCmd()
}

// Tab is the screen shown.
func (m Model) Tab() Tab { return m.tab }

// resize gives every component its share of the screen.
func (m Model) resize() Model {
	bh := max(1, m.h-2)
	if m.w >= wide {
		pw := publishedWidth(m.w)
		m.topo = m.topo.SetSize(m.w-pw-1, bh)
		m.pub = m.pub.SetSize(pw, bh)
	} else {
		ph := publishedHeight(m.pub, bh)
		m.pub = m.pub.SetSize(m.w, ph)
		m.topo = m.topo.SetSize(m.w, max(1, bh-ph))
	}
	m.trace = m.trace.SetSize(m.w, bh)
	m.replay = m.replay.SetSize(m.w, bh)
	m.help = m.help.SetSize(m.w, m.h)
	if m.w >= wide {
		lw := listWidth(m.w)
		m.ports = m.ports.SetSize(lw, bh)
		m.path = m.path.SetSize(m.w-lw-1, bh)
	} else {
		m.ports = m.ports.SetSize(m.w, bh)
		m.path = m.path.SetSize(m.w, bh)
	}
	return m
}

func listWidth(w int) int { return min(64, w/3) }

// publishedWidth is the width of the published ports beside the topology
// on a wide screen.
func publishedWidth(w int) int { return min(56, w/3) }

// publishedHeight is the height of the published ports above the topology
// on a narrow screen: its header and up to four ports (a fifth line says
// how many more), never more than a third of the screen.
func publishedHeight(p ports.Published, bh int) int {
	return max(2, min(1+max(1, p.Len()), 5, bh/3))
}
