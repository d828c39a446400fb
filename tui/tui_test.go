package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
	"github.com/meshtrace/meshtrace/tui/traceview"
)

var clock = func() time.Time { return time.Date(2026, 3, 11, 9, 13, 11, 0, time.UTC) }

// fakeTracer replays canned events, then ends.
type fakeTracer struct {
	mu     sync.Mutex
	events []trace.Event
	got    []TraceRequest
}

func (f *fakeTracer) Start(ctx context.Context, r TraceRequest) (Trace, error) {
	f.mu.Lock()
	f.got = append(f.got, r)
	f.mu.Unlock()
	return Trace{Events: func(yield func(trace.Event) bool) {
		for _, e := range f.events {
			if ctx.Err() != nil || !yield(e) {
				return
			}
		}
	}}, nil
}

var _ Tracer = (*fakeTracer)(nil)

// probeEvents are a probe trace's: the capture listens, the connection
// shows in flight, then ends, then the summary.
func probeEvents() []trace.Event {
	cs := tuitest.Conns()
	inFlight := cs[0]
	inFlight.Complete = false
	return []trace.Event{
		trace.Ready{Points: make([]trace.PointStat, 9)},
		trace.Progress{Frames: 17},
		trace.FlowUpdated{Flow: inFlight},
		trace.FlowEnded{Flow: cs[0]},
		trace.Done{Result: &trace.Result{Frames: 23, Notes: []string{"capture stopped: probe"}}, Flows: 1},
	}
}

func config(t *testing.T, bundle string) Config {
	tm := tuitest.Bundle(t, bundle)
	return Config{
		Source: "bundle:" + bundle,
		Load:   func(context.Context) (*topology.Model, error) { return tm, nil },
		Tracer: &fakeTracer{events: probeEvents()},
		Now:    clock,
	}
}

// watched publishes the model after every update, so that a test can
// wait for background work (the first reading, a trace) to be done
// without reading the terminal output, which the renderer writes as
// differences.
type watched struct {
	Model
	last *atomic.Pointer[Model]
}

func (w watched) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	nm, cmd := w.Model.Update(msg)
	w.Model = nm.(Model)
	m := w.Model
	w.last.Store(&m)
	return w, cmd
}

func waitUntil(t *testing.T, last *atomic.Pointer[Model], what string, ok func(Model) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := last.Load(); m != nil && ok(*m) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func traceFinished(m Model) bool { return m.trace.State() == traceview.Done && m.traceCancel == nil }

// run drives the root model in teatest at w x h: it waits for the first
// reading, sends the keys, waits until until holds (nil: at once), quits
// and returns the final model.
func run(t *testing.T, cfg Config, w, h int, until func(Model) bool, keys ...string) Model {
	t.Helper()
	last := &atomic.Pointer[Model]{}
	tm := teatest.NewTestModel(t, watched{New(cfg), last}, teatest.WithInitialTermSize(w, h))
	waitUntil(t, last, "the first reading", func(m Model) bool { return m.model != nil })
	for _, k := range tuitest.Keys(keys...) {
		tm.Send(k)
	}
	if until != nil {
		waitUntil(t, last, "the screen", until)
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(watched).Model
}

func TestView(t *testing.T) {
	cases := []struct {
		name, bundle string
		until        func(Model) bool
		keys         []string
		replay       bool
	}{
		{"topology", "modern", nil, nil, false},
		// the first screen: the published ports beside the topology;
		// ] selects the second, o draws its path.
		{"first-screen", "docker112", nil, nil, false},
		{"first-screen-open", "docker112", nil, []string{"]", "o"}, false},
		{"paths", "modern", nil, []string{"2"}, false},
		{"path", "modern", nil, []string{"2", "enter"}, false},
		{"path-ipvs", "modern", nil, []string{"2", "enter", "right", "right", "right", "right"}, false},
		{"path-vip", "eastwest", nil, []string{"2", "enter", "end"}, false},
		// a probe trace: the connection reaches web.1, marked on the path.
		{"trace-path", "modern", traceFinished, []string{"2", "enter", "p"}, false},
		{"trace-tab", "modern", traceFinished, []string{"2", "enter", "p", "3"}, false},
		{"replay", "modern", nil, []string{"4", "]"}, true},
		// after a live trace, the replay tab steps through its packets.
		{"replay-live", "modern", traceFinished, []string{"2", "enter", "p", "4"}, false},
		{"help", "modern", nil, []string{"2", "enter", "?"}, false},
		{"filter", "eastwest", nil, []string{"/", "api"}, false},
	}
	for _, c := range cases {
		for _, sz := range tuitest.Sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", c.name, sz[0], sz[1]), func(t *testing.T) {
				cfg := config(t, c.bundle)
				if c.replay {
					cfg.Replay, cfg.ReplayTitle = tuitest.Conns(), "probe.pcapng"
				}
				m := run(t, cfg, sz[0], sz[1], c.until, c.keys...)
				tuitest.Golden(t, m.Screen())
			})
		}
	}
}

// TestFirstScreenOpens: on the first screen one key draws the selected
// published port's path; [ and ] choose the port, within the list.
func TestFirstScreenOpens(t *testing.T) {
	for _, c := range []struct {
		keys  []string
		proto string
		port  int
	}{
		{[]string{"o"}, "udp", 5353},
		{[]string{"]", "o"}, "tcp", 8080},
		{[]string{"]", "]", "]", "o"}, "tcp", 8080},
		{[]string{"]", "[", "[", "o"}, "udp", 5353},
	} {
		m := run(t, config(t, "docker112"), 80, 24, nil, c.keys...)
		if m.Tab() != TabPaths || !m.pathOpen || m.entry == nil || m.entry.Query.Proto != c.proto || m.entry.Query.Port != c.port {
			t.Errorf("%v: tab %d, open %v, entry %+v; want the path of %s/%d", c.keys, m.Tab(), m.pathOpen, m.entry, c.proto, c.port)
		}
	}
	// Nothing published: o says so and stays.
	m := run(t, config(t, "eastwest"), 80, 24, nil, "o")
	if m.Tab() != TabTopology || m.entry != nil || !strings.Contains(m.Screen(), "no port published on this node") {
		t.Errorf("eastwest: tab %d, entry %+v:\n%s", m.Tab(), m.entry, m.Screen())
	}
}

func TestProbeRequest(t *testing.T) {
	cfg := config(t, "modern")
	run(t, cfg, 80, 24, traceFinished, "2", "enter", "p")
	ft := cfg.Tracer.(*fakeTracer)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if len(ft.got) != 1 || !ft.got[0].Probe || ft.got[0].Query.Port != 8080 || ft.got[0].Count != 3 {
		t.Fatalf("tracer asked %+v", ft.got)
	}
}

func TestQuitEndsProgram(t *testing.T) {
	tm := teatest.NewTestModel(t, New(config(t, "modern")), teatest.WithInitialTermSize(80, 24))
	tm.Send(tuitest.Keys("q")[0])
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	// ctrl+c quits also while the filter is being typed.
	tm = teatest.NewTestModel(t, New(config(t, "modern")), teatest.WithInitialTermSize(80, 24))
	tm.Send(tuitest.Keys("/")[0])
	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// A slow reading does not block the keys: the paths tab opens while the
// model is still being read.
func TestRefreshDoesNotBlockInput(t *testing.T) {
	release := make(chan struct{})
	tmod := tuitest.Bundle(t, "modern")
	cfg := Config{Now: clock, Load: func(ctx context.Context) (*topology.Model, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return tmod, nil
	}}
	last := &atomic.Pointer[Model]{}
	tm := teatest.NewTestModel(t, watched{New(cfg), last}, teatest.WithInitialTermSize(80, 24))
	tm.Send(tuitest.Keys("2")[0])
	waitUntil(t, last, "the paths tab while the model is read", func(m Model) bool { return m.tab == TabPaths && m.model == nil && m.loading })
	close(release)
	waitUntil(t, last, "the reading", func(m Model) bool { return m.model != nil && len(m.ports.Entries()) == 1 })
	tm.Quit()
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// Background refreshes highlight what changed: a backend that appeared
// and a counter that moved.
func TestRefreshHighlightsChanges(t *testing.T) {
	first := tuitest.Bundle(t, "modern")
	second := tuitest.Bundle(t, "modern")
	first.Lookup("ingress_sbox").IPVS.Services[0].Dests = first.Lookup("ingress_sbox").IPVS.Services[0].Dests[:1]
	second.Lookup("host").Firewall.Table("nat").Chain("DOCKER-INGRESS").Rules[0].Packets += 4
	reads := []*topology.Model{first, second}
	var mu sync.Mutex
	cfg := Config{Now: clock, Interval: time.Hour, Load: func(context.Context) (*topology.Model, error) {
		mu.Lock()
		defer mu.Unlock()
		m := reads[0]
		if len(reads) > 1 {
			reads = reads[1:]
		}
		return m, nil
	}}
	m := drive(t, New(cfg), tea.WindowSizeMsg{Width: 160, Height: 48})
	m = drive(t, m, m.Init()())
	m = press(t, m, "2", "enter")
	m = drive(t, m, refreshMsg{})
	v := tuitest.Plain(m.Screen())
	if !strings.Contains(v, "* 1 changed") {
		t.Errorf("title bar does not count the change:\n%s", v)
	}
	m = press(t, m, "right")
	if v := tuitest.Plain(m.Screen()); !strings.Contains(v, "+4 packets since the previous refresh") {
		t.Errorf("moved counter not shown:\n%s", v)
	}
	m = press(t, m, "right", "right", "right")
	if v := tuitest.Plain(m.Screen()); !strings.Contains(v, "10.0.0.6:0 masq weight 1 active 0 inactive 0  * new") {
		t.Errorf("new backend not highlighted:\n%s", v)
	}
}

// drive is the program's loop for a test: it applies msg, then runs the
// command that returns and feeds its message back, until none is left.
// Commands that do not answer at once (ticks) are dropped.
func drive(t *testing.T, m Model, msg tea.Msg) Model {
	t.Helper()
	for msg != nil {
		tm, cmd := m.Update(msg)
		m, msg = tm.(Model), nil
		if cmd == nil {
			break
		}
		done := make(chan tea.Msg, 1)
		go func() { done <- cmd() }()
		select {
		case msg = <-done:
		case <-time.After(200 * time.Millisecond):
		}
		if _, ok := msg.(tea.QuitMsg); ok {
			t.Fatal("the model quit")
		}
	}
	return m
}

func press(t *testing.T, m Model, keys ...string) Model {
	t.Helper()
	for _, k := range tuitest.Keys(keys...) {
		m = drive(t, m, k)
	}
	return m
}

// NO_COLOR: no foreground colours at all, and the states still read in
// text (the colour theme adds them).
func TestNoColor(t *testing.T) {
	for _, colour := range []bool{false, true} {
		cfg := config(t, "modern")
		cfg.Color = colour
		m := New(cfg).WithModel(tuitest.Bundle(t, "modern"))
		m = press(t, m, "2", "enter")
		s := m.Screen()
		hasColour := strings.Contains(s, "\x1b[3") || strings.Contains(s, "\x1b[9") || strings.Contains(s, ";3")
		if hasColour != colour {
			t.Errorf("color=%v but colour codes present=%v", colour, hasColour)
		}
		// modern's remote backend's way (overlay neighbours, FDB) was
		// not collected: its path is unknown, said in words.
		if !strings.Contains(strings.ToLower(tuitest.Plain(s)), "? unknown") || !strings.Contains(tuitest.Plain(s), "▶ client") {
			t.Errorf("color=%v: state markers missing", colour)
		}
	}
}

func TestVIPNextClientAndTraceLimits(t *testing.T) {
	cfg := config(t, "eastwest")
	m := drive(t, New(cfg), tea.WindowSizeMsg{Width: 120, Height: 40})
	m = drive(t, m, m.Init()())
	m = press(t, m, "2", "enter")
	if p := m.path.Path(); p == nil || p.From != "5f0c3a9e1d27" {
		t.Fatalf("VIP path from %+v, want front's task", p)
	}
	m = press(t, m, "c")
	if p := m.path.Path(); p == nil || p.From != "8b4d2f6a0c13" {
		t.Fatalf("after c the path starts from %+v, want api's task", p)
	}
	if v := tuitest.Plain(m.Screen()); !strings.Contains(v, "VIP 10.0.1.5:80 from api.1") {
		t.Errorf("header does not name the new client:\n%s", v)
	}
	m = press(t, m, "p")
	if !strings.Contains(m.status, "VIP path") || m.trace.State() != traceview.Idle {
		t.Errorf("a VIP path started a trace: status %q", m.status)
	}
	cfg.Tracer = nil
	m = drive(t, New(cfg), tea.WindowSizeMsg{Width: 120, Height: 40})
	m = drive(t, m, m.Init()())
	m = press(t, m, "2", "down", "down", "enter", "p")
	if !strings.Contains(tuitest.Plain(m.Screen()), "live trace needs a live source") {
		t.Errorf("no tracer: not said:\n%s", tuitest.Plain(m.Screen()))
	}
}
