package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/internal/textsafe"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/capture"
	"github.com/meshtrace/meshtrace/trace/pcapio"
	"github.com/meshtrace/meshtrace/tui"
)

// tuiFlags are the interface's own flags, next to the source's.
type tuiFlags struct {
	src        sourceFlags
	replay     []string
	interval   time.Duration
	probeCount int
}

func (f *tuiFlags) add(c *cobra.Command) {
	f.src.add(c)
	fl := c.Flags()
	fl.StringSliceVar(&f.replay, "replay", nil, "capture files to step through (pcapng from trace --pcap, tcpdump pcap/pcapng); repeatable or comma-separated")
	durationFlag(fl, &f.interval, "interval", 5*time.Second, intervalRange, "re-read the model this often in the background (0: never)")
	intFlag(fl, &f.probeCount, "probe-count", 3, probeCountRng, "connections a probe trace makes")
}

func init() {
	var f tuiFlags
	c := &cobra.Command{
		Use:   "tui",
		Short: "interactive view of the node: topology, published ports' paths, live trace, replay",
		Long: `tui opens a terminal interface over a SOURCE: this host (default, as root), a bundle
(--from DIR), a node of the built-in mesh (--mesh NAME --node NODE), and/or capture files
(--replay FILE...). Screens: 1 topology (namespaces by role; enter expands, p jumps to a
veth's peer; beside it the published ports with their services: o draws the marked
port's path, [ and ] mark another), 2 paths (published ports and service VIPs drawn as a chain of boxes; each
box opens to its rule with counters or its IPVS entry; p starts a probe trace, t watches
real traffic), 3 trace (connections as they are seen, hop by hop), 4 replay (step through
a capture packet by packet). The model is re-read in the background; ? shows the keys,
/ filters, q quits. NO_COLOR is respected: every state is also written as a mark.`,
		Example: `  meshtrace tui --mesh demo
  meshtrace tui --from bundle/
  meshtrace tui --replay demo.pcapng --from bundle/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTUI(cmd.Context(), f) },
	}
	f.add(c)
	root.AddCommand(c)

	// plain `meshtrace` on a terminal opens the interface over this host.
	var plain tuiFlags
	plain.interval, plain.probeCount, plain.src.node, plain.src.firewall = 5*time.Second, 3, "node0", "auto"
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if !term.IsTerminal(os.Stdout.Fd()) || !term.IsTerminal(os.Stdin.Fd()) {
			return cmd.Help()
		}
		return runTUI(cmd.Context(), plain)
	}
}

// runTUI builds the interface's configuration from the flags and runs it
// until the user quits; the terminal is restored on return.
func runTUI(ctx context.Context, f tuiFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	spec := f.src.spec()
	if err := spec.Check(); err != nil {
		return err
	}
	replayOnly := len(f.replay) > 0 && f.src.from == "" && f.src.meshName == ""
	cfg := tui.Config{Interval: f.interval, ProbeCount: f.probeCount, Color: colour(), Source: spec.String()}
	if !replayOnly {
		src := f.src
		cfg.Load = tuiLoad(src)
		if src.from == "" {
			cfg.Tracer = tuiTracer{src}
		}
	}
	if len(f.replay) > 0 {
		cfg.ReplayTitle = strings.Join(f.replay, ", ")
		cfg.Replay, cfg.ReplayPrimary, cfg.ReplayErr = loadReplay(ctx, f.src, f.replay, replayOnly)
		if replayOnly {
			cfg.Source = "replay"
		}
	}
	p := tea.NewProgram(tui.New(cfg), tea.WithContext(ctx))
	_, err := p.Run()
	if err != nil && err != tea.ErrProgramKilled {
		return fmt.Errorf("tui: %w", err)
	}
	return nil
}

// tuiLoad reads the source for the interface, which draws the model's
// strings itself: they are escaped in place first (textsafe), so a
// namespace or link name, a rule or a note holding terminal escapes cannot
// reach the screen raw.
func tuiLoad(src sourceFlags) func(context.Context) (*topology.Model, error) {
	return func(ctx context.Context) (*topology.Model, error) {
		m, err := src.load(ctx)
		if m != nil {
			textsafe.Escape(m)
		}
		return m, err
	}
}

// colour is off under NO_COLOR (any value) and on dumb terminals.
func colour() bool {
	_, no := os.LookupEnv("NO_COLOR")
	return !no && os.Getenv("TERM") != "dumb"
}

// tuiTracer is `meshtrace trace` for the interface: the source's env
// (every mesh node with --mesh), the mesh's client netns, the probe, and
// the flows in flight reported as they change.
type tuiTracer struct{ src sourceFlags }

// Start implements tui.Tracer.
func (t tuiTracer) Start(ctx context.Context, r tui.TraceRequest) (tui.Trace, error) {
	env, st, err := loadEnv(ctx, t.src, r.Query)
	if err != nil {
		return tui.Trace{}, err
	}
	cfg := capture.Config{Env: env, Live: capture.Options{Timeout: 5 * time.Minute}, PacketHops: true, Updates: 250 * time.Millisecond}
	cfg.Opener, cfg.Tables = t.src.kernel()
	if st != nil {
		cfg.Client = &trace.Client{Path: st.Client.Netns, Ifname: "eth0", Addr: st.Client.IP}
	}
	if r.Probe {
		count := max(1, r.Count)
		cfg.Live = capture.Options{Count: count, Timeout: 30 * time.Second}
		cfg.Probe = &capture.Probe{Proto: r.Query.Proto, Count: count, From: "host", To: netip.AddrPortFrom(env.Nodes[0].Addr, uint16(r.Query.Port))}
		if st != nil {
			cfg.Probe.Netns, cfg.Probe.From = st.Client.Netns, "client"
		}
	}
	return tui.Trace{Events: capture.Run(ctx, cfg), Primary: env.Primary()}, nil
}

// loadReplay replays capture files for the interface (replay's setup,
// openReplay's), against the source when there is one; a source that
// cannot be loaded leaves the files replayed without it, saying so. The
// flows read before a bad file are kept with its error. It returns the
// node the flows' names are relative to.
func loadReplay(ctx context.Context, src sourceFlags, files []string, noSource bool) ([]trace.Flow, string, error) {
	fs := &pcapio.Files{Paths: files}
	env, envErr := replayEnv(ctx, src, fs, topology.Query{}, !noSource)
	if envErr != nil {
		env = nil
	}
	res, err := trace.Collect(fs.Stream(ctx, env, trace.ReplayOptions{PacketHops: true}))
	if err == nil && envErr != nil {
		err = fmt.Errorf("replay without the source's namespaces: %w", envErr)
	}
	primary := env.Primary()
	if primary == "" {
		primary = entryNode(res)
	}
	textsafe.Escape(&res.Flows) // interface names from the files, drawn as they are
	return res.Flows, primary, err
}

// entryNode is the node of the first "host" sighting of the first flow:
// the node a replay against an unnamed source is drawn for.
func entryNode(res *trace.Result) string {
	for _, f := range res.Flows {
		for _, h := range f.Hops {
			if h.Netns == "host" {
				return h.Node
			}
		}
	}
	return ""
}
