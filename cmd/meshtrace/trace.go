package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/internal/progress"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/capture"
)

func init() {
	var (
		src       sourceFlags
		out       string
		q         topology.Query
		probe     bool
		count     int
		timeout   time.Duration
		pcap      string
		ringKB    int
		packets   bool
		probeFrom string
		probePath string
		vip       string
	)
	c := &cobra.Command{
		Use:   "trace",
		Short: "watch a published port's packets at every hop and NAT of the routing mesh (live)",
		Long: `trace opens an AF_PACKET socket (with a kernel BPF filter) on every interface of the
published port's path: the host's uplink, docker_gwbridge and its veth to the sandbox,
both sandbox legs, the overlay's ports and VXLAN device, each task's ingress leg (with
--mesh, on every node of the mesh and in its client netns). It recognises each packet at
every hop although DNAT, IPVS, SNAT and REDIRECT rewrote it (IPv4 ID, TCP seq/ack and
payload survive them; VXLAN is decoded) and explains every rewrite from the rules.
It changes nothing on the system. --probe makes the traffic itself (one HTTP GET per
connection, or one UDP datagram), from the mesh's client netns with --mesh, from this
namespace otherwise. Before and after the capture it reads the kernel's counters of every
namespace on the path (rules, chain policies, /proc/net/snmp and netstat, conntrack, links,
IPVS; read-only): a flow that stopped names the drop counters that moved where it stopped.
When standard error is a terminal, it shows there how long the
trace has waited for traffic and the frames and flows seen so far.
--pcap - streams the capture to standard output as pcapng, frame by frame, each
interface named by its hop (netns/interface), for Wireshark or tshark reading a pipe;
the report (text or JSON) then goes to standard error.
Exit status: 0 every flow answered, 3 a flow stopped or a probe failed (the output says
where and why),
2 the port is not published, 1 other errors.`,
		Example: `  meshtrace trace --mesh demo --port 8080 --probe
  meshtrace trace --mesh demo --port 8080 --probe --count 4 --pcap demo.pcapng
  meshtrace trace --port 8080 --count 10 --timeout 1m -o json
  meshtrace trace --vip 10.0.1.2 --netns 4fa3e78543ec --port 80 --probe --count 4
  meshtrace trace --mesh demo --port 8080 --count 0 --timeout 10m --pcap - | wireshark -k -i -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.Port <= 0 || q.Port > 65535 {
				return fmt.Errorf("--port must be 1-65535")
			}
			if q.Proto != "tcp" && q.Proto != "udp" {
				return fmt.Errorf("--proto %q: want tcp or udp", q.Proto)
			}
			if err := vipQuery(vip, &q); err != nil {
				return err
			}
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			if src.from != "" {
				return fmt.Errorf("trace captures live traffic: --from reads a bundle, use `meshtrace replay FILE --from DIR` for captures")
			}
			if probeFrom != "" && probeFrom != "node" && probeFrom != "client" {
				return fmt.Errorf("--probe-from %q: want client or node", probeFrom)
			}
			if probePath == "" || probePath[0] != '/' {
				return fmt.Errorf("--probe-path %q: want a path starting with /", probePath)
			}
			if count < 0 || (probe && count < 1) {
				return fmt.Errorf("--count must be at least 1 with --probe, 0 (until --timeout) or more without")
			}
			if pcap != "" && pcap != "-" {
				if err := safefile.CheckNew(pcap); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			env, st, err := loadEnv(ctx, src, q)
			if err != nil {
				return err
			}
			cfg := capture.Config{Env: env, Live: capture.Options{Count: count, Timeout: timeout}, PacketHops: packets}
			cfg.Opener, cfg.Tables = src.kernel()
			cfg.Counters = source.Counters{Spec: src.spec()}
			if ringKB > 0 {
				cfg.Opener = capture.AFPacket{BlockSize: 128 << 10, Blocks: max(1, ringKB/128), Modules: src.modules()}
			}
			if st != nil {
				cfg.Client = &trace.Client{Path: st.Client.Netns, Ifname: "eth0", Addr: st.Client.IP}
			}
			if probe {
				cfg.Probe = &capture.Probe{Proto: q.Proto, Count: count, From: "host", To: netip.AddrPortFrom(env.Nodes[0].Addr, uint16(q.Port)), Path: probePath}
				switch {
				case q.VIP.IsValid():
					// east-west: from the calling task's namespace to the VIP
					ns := env.Nodes[0].Model.Lookup(q.Netns)
					if ns == nil || ns.Path == "" {
						return fmt.Errorf("--probe: namespace %s has no file to open", q.Netns)
					}
					cfg.Probe.Netns, cfg.Probe.From, cfg.Probe.To = ns.Path, q.Netns, netip.AddrPortFrom(q.VIP, uint16(q.Port))
				case st != nil && probeFrom == "node":
					for _, n := range st.Nodes {
						if n.Name == src.node {
							cfg.Probe.Netns = n.Host
						}
					}
				case st != nil:
					cfg.Probe.Netns, cfg.Probe.From = st.Client.Netns, "client"
				case probeFrom == "client":
					return fmt.Errorf("--probe-from client needs --mesh: on a live node the probe starts on the node itself")
				}
			}
			w := cmd.OutOrStdout()
			var stream *pcapStream
			if pcap == "-" {
				// Standard output is the capture's: the report goes to
				// standard error.
				if stream, err = newPcapStream(direct(w), env, cfg.Client); err != nil {
					return err
				}
				cfg.Live.Tee = stream.tee
				w = cmd.ErrOrStderr()
			}
			var pf *os.File
			if pcap != "" && pcap != "-" {
				if pf, err = safefile.Create(pcap); err != nil {
					return err
				}
				defer pf.Close()
				cfg.Pcap = pf
			}
			err = report(w, out, capture.Run(ctx, cfg), probe, true)
			if stream != nil && err == nil {
				err = stream.Err()
			}
			if pf != nil {
				if cerr := pf.Close(); cerr != nil && err == nil {
					return fmt.Errorf("%s: %w", pcap, cerr)
				}
			}
			return err
		},
	}
	src.add(c)
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "text", "text or json")
	intFlag(f, &q.Port, "port", 0, portRange, "published port (with --vip: the service's port)")
	f.StringVar(&vip, "vip", "", "trace an east-west call to this service VIP from --netns instead of a published port (the overlay's VXLAN, ESP on an encrypted overlay)")
	f.StringVar(&q.Netns, "netns", "", "the namespace the east-west call starts from (with --vip); --probe calls from there")
	f.StringVar(&q.Proto, "proto", "tcp", "tcp or udp")
	f.StringVar(&probeFrom, "probe-from", "", "where --probe starts: client (the mesh's client netns, the default with --mesh) or node (the node itself, like curl 127.0.0.1; the default live)")
	f.StringVar(&probePath, "probe-path", "/", "the path and query of --probe's HTTP GET (tcp), e.g. /?size=200000 for a large answer from the mesh's tasks")
	f.BoolVar(&probe, "probe", false, "make the traffic: --count connections (HTTP GET) or datagrams to the published port")
	intFlag(f, &count, "count", 1, countRange, "stop after this many complete connections, 0: run until --timeout (with --probe: make this many)")
	durationFlag(f, &timeout, "timeout", 30*time.Second, captureTimeout, "stop capturing after this long")
	f.StringVar(&pcap, "pcap", "", "write the capture as pcapng to this new file, mode 0600 (one interface per netns/interface, a comment per packet); "+
		"- streams it to standard output as it is captured (| wireshark -k -i -), and the report (-o text or json) goes to standard error")
	intFlag(f, &ringKB, "ring-kb", 0, ringKBRange, "kernel ring per socket in KiB (default 2048)")
	f.BoolVar(&packets, "packets", false, "list every packet's sightings in the JSON (not only the first request's and reply's)")
	root.AddCommand(c)
}

// loadEnv reads the source's nodes and the port's path through each
// (source.LoadEnv) as trace's Env, with the mesh's state under --mesh.
func loadEnv(ctx context.Context, src sourceFlags, q topology.Query) (*trace.Env, *mesh.State, error) {
	e, err := source.LoadEnv(ctx, src.spec(), q)
	var np *topology.NotPublishedError
	if errors.As(err, &np) {
		return nil, nil, &exitError{code: 2, msg: np.Error()}
	}
	if err != nil {
		return nil, nil, err
	}
	env := &trace.Env{Proto: q.Proto, Port: q.Port}
	for _, n := range e.Nodes {
		env.Nodes = append(env.Nodes, &trace.Node{Name: n.Name, Model: n.Model, Path: n.Path, Addr: n.Addr})
	}
	return env, e.Mesh, nil
}

// kernel is trace's capture and table readers behind the source's module
// gate.
func (s *sourceFlags) kernel() (capture.Opener, capture.Tables) {
	return capture.AFPacket{Modules: s.modules()}, capture.Kernel{Modules: s.modules()}
}

// report prints a trace's events: as text, each flow as it ends and the
// summary last; as JSON, the whole result at the end (trace.Collect). A
// flow that stopped makes exit status 3, a file error 1. live: an error
// before the capture started (no Ready) is the command's error.
func report(w io.Writer, out string, events iter.Seq[trace.Event], expectFlows, live bool) error {
	var (
		done  trace.Done
		ready bool
		err   error
	)
	name := "replay"
	if live {
		name = "trace"
	}
	events = withProgress(progress.Stderr(name), events, live)
	if out == "json" {
		res, cerr := trace.Collect(func(yield func(trace.Event) bool) {
			for e := range events {
				if _, ok := e.(trace.Ready); ok {
					ready = true
				}
				if !yield(e) {
					return
				}
			}
		})
		if live && !ready && cerr != nil {
			return cerr
		}
		done = trace.Done{Result: res, Flows: len(res.Flows)}
		for _, f := range res.Flows {
			if !f.Answered {
				done.Unanswered++
			}
		}
		err = trace.WriteJSON(w, res)
	} else {
		done, ready, err = trace.WriteTextStream(w, events)
		if live && !ready && done.Err != nil {
			return done.Err
		}
	}
	if err != nil {
		return err
	}
	if done.Result.Error != "" {
		return &exitError{code: 1, msg: done.Result.Error}
	}
	if done.Unanswered > 0 {
		return &exitError{code: 3}
	}
	// An answered flow can still have stalled (a response too big for
	// the path's MTU): the probe that made it failed.
	for _, p := range done.Result.Probes {
		if p.Error != "" {
			return &exitError{code: 3, msg: fmt.Sprintf("probe %s -> %s failed: %s", p.From, p.To, p.Error)}
		}
	}
	if expectFlows && done.Flows == 0 {
		return &exitError{code: 3, msg: "no packet of the probe was seen at any capture point"}
	}
	return nil
}

// withProgress shows on p (standard error, when it is a terminal) how far
// the trace is: live, the capture points open and how long it has waited
// for traffic; both, the frames and flows seen. The line is cleared before
// any other event is handed on, so a flow's text never mixes with it.
func withProgress(p *progress.Line, events iter.Seq[trace.Event], live bool) iter.Seq[trace.Event] {
	if p == nil {
		return events
	}
	return func(yield func(trace.Event) bool) {
		defer p.Clear()
		var (
			start  time.Time
			points int
			flows  int
		)
		if live {
			p.Say("opening the capture points")
		}
		for e := range events {
			switch e := e.(type) {
			case trace.Ready:
				start, points = time.Now(), len(e.Points)
				p.Say("capturing at %d points: waiting for traffic (Ctrl-C stops)", points)
				if !yield(e) {
					return
				}
				continue
			case trace.Progress:
				if live {
					p.Say("%d points, %s: %d frames, %d flows ended (Ctrl-C stops)", points, time.Since(start).Truncate(time.Second), e.Frames, flows)
				} else {
					p.Say("%d frames, %d flows ended", e.Frames, flows)
				}
				if !yield(e) {
					return
				}
				continue
			case trace.FlowEnded:
				flows++
			}
			p.Clear()
			if !yield(e) {
				return
			}
		}
	}
}
