package main

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/swarm/load"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/pcapio"
)

func init() {
	var (
		src     sourceFlags
		out     string
		q       topology.Query
		live    bool
		packets bool
		vip     string
	)
	c := &cobra.Command{
		Use:   "replay FILE...",
		Short: "correlate packets across hops and NATs from capture files (pcapng from trace, tcpdump pcap/pcapng)",
		Long: `replay runs trace's correlation on files: the pcapng trace --pcap writes (one interface
per netns/interface), pcap or pcapng from tcpdump on one interface or with -i any (Linux
cooked v1 and v2), several files at once (one per hop). With a SOURCE (--from DIR, --mesh
NAME, or --live for this host) it maps addresses to namespaces and explains rewrites from
the rules; without one it still correlates and prints what it can. Captures of several
nodes of a swarm (trace --pcap on each) go together as NODE=FILE with --from DIR of
meshtrace swarm collect (a bundle per node): a packet is followed from one node to the other,
through ESP on an encrypted overlay (--vip VIP --netns TASK for an east-west call).
Exit status: 0 every flow answered, 3 a flow stopped, 1 a file could not be read (the
flows read before the error are printed).`,
		Example: `  meshtrace replay demo.pcapng
  meshtrace replay task.pcap sandbox.pcap --mesh demo --node node0 -o json
  meshtrace replay node0=n0.pcapng node1=n1.pcapng --from swarmdir --vip 10.0.1.2 --netns 4fa3e78543ec --port 80`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			if q.Proto != "" && q.Proto != "tcp" && q.Proto != "udp" {
				return fmt.Errorf("--proto %q: want tcp or udp", q.Proto)
			}
			if err := vipQuery(vip, &q); err != nil {
				return err
			}
			replayGC()
			events, err := openReplay(cmd.Context(), src, files, q, live || src.from != "" || src.meshName != "",
				trace.ReplayOptions{Proto: q.Proto, Port: q.Port, PacketHops: packets})
			if err != nil {
				return err
			}
			return report(cmd.OutOrStdout(), out, events, false, false)
		},
	}
	src.add(c)
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "text", "text or json")
	intFlag(f, &q.Port, "port", 0, portRange, "only flows to this published port (default: all; the first flow's port names the path)")
	f.StringVar(&q.Proto, "proto", "", "only tcp or udp flows")
	f.BoolVar(&live, "live", false, "map the files onto this host's namespaces and rules")
	f.StringVar(&vip, "vip", "", "with a source: explain from the east-west path to this service VIP from --netns (not a published port's)")
	f.StringVar(&q.Netns, "netns", "", "the namespace the east-west call starts from (with --vip)")
	f.BoolVar(&packets, "packets", false, "list every packet's sightings in the JSON (not only the first request's and reply's)")
	root.AddCommand(c)
}

// openReplay is replay's setup, for the command and the TUI: the files
// (pcapio.Files) and, with a source, its nodes and the port's path
// (source.LoadEnv) for the port asked or the one the files carry. The
// env is nil without a source or a port.
func openReplay(ctx context.Context, src sourceFlags, files []string, q topology.Query, withSource bool, o trace.ReplayOptions) (iter.Seq[trace.Event], error) {
	if ctx == nil {
		ctx = context.Background()
	}
	fs := &pcapio.Files{Paths: files}
	env, err := replayEnv(ctx, src, fs, q, withSource)
	if err != nil {
		return nil, err
	}
	return fs.Stream(ctx, env, o), nil
}

// replayEnv loads the source's Env for the files' port (nil without a
// source or a port).
func replayEnv(ctx context.Context, src sourceFlags, fs *pcapio.Files, q topology.Query, withSource bool) (*trace.Env, error) {
	if !withSource {
		return nil, nil
	}
	if q.Port == 0 || q.Proto == "" {
		proto, port := fs.Survey().GuessPort()
		if q.Port == 0 {
			q.Port = port
		}
		if q.Proto == "" {
			q.Proto = proto
		}
	}
	if q.Port == 0 {
		return nil, nil
	}
	if src.from != "" && isSwarmDir(src.from) {
		return swarmEnv(ctx, src.from, q)
	}
	env, _, err := loadEnv(ctx, src, q)
	return env, err
}

// isSwarmDir: dir holds node bundles (`swarm collect`'s DIR/NODE/...),
// not a bundle itself.
func isSwarmDir(dir string) bool {
	if st, err := os.Stat(filepath.Join(dir, inspect.BundleNetnsDir, inspect.BundleHost)); err == nil && st.IsDir() {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, swarm.ManifestFile))
	return err == nil && st.Mode().IsRegular()
}

// swarmEnv is replay's Env over a swarm's node bundles (a capture from
// each node, NODE=FILE): every node with its model and the path asked
// through it, the node the east-west call starts on (--netns) first.
func swarmEnv(ctx context.Context, dir string, q topology.Query) (*trace.Env, error) {
	nodes, err := load.Nodes(ctx, dir)
	if err != nil {
		return nil, err
	}
	env := &trace.Env{Proto: q.Proto, Port: q.Port}
	for _, n := range nodes {
		if n.Model == nil {
			continue
		}
		addr, _ := topology.NodeAddress(n.Model.Lookup("host"))
		tn := &trace.Node{Name: n.Name, Model: n.Model, Addr: addr}
		tn.Path, _ = topology.FindPath(n.Model, q) // nil where the port or the caller is not
		if tn.Path != nil && q.VIP.IsValid() && n.Model.Lookup(q.Netns) != nil && len(env.Nodes) > 0 {
			env.Nodes = append([]*trace.Node{tn}, env.Nodes...)
			continue
		}
		env.Nodes = append(env.Nodes, tn)
	}
	if len(env.Nodes) == 0 {
		return nil, fmt.Errorf("swarm %s: no node was collected", dir)
	}
	return env, nil
}

// replayGC lets the collector run less often during a replay: the live
// heap is small (the flows in flight) and the garbage plenty (each flow's
// explanation, once written), so the default's collection every doubling
// costs a quarter of the time. A soft memory limit keeps the peak bounded;
// GOGC and GOMEMLIMIT in the environment win.
func replayGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(256 << 20)
	}
}
