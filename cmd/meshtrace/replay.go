package main

import (
	"context"
	"fmt"
	"iter"
	"net/netip"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

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
the rules; without one it still correlates and prints what it can.
Exit status: 0 every flow answered, 3 a flow stopped, 1 a file could not be read (the
flows read before the error are printed).`,
		Example: `  meshtrace replay demo.pcapng
  meshtrace replay task.pcap sandbox.pcap --mesh demo --node node0 -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			if q.Proto != "" && q.Proto != "tcp" && q.Proto != "udp" {
				return fmt.Errorf("--proto %q: want tcp or udp", q.Proto)
			}
			if vip != "" {
				a, err := netip.ParseAddr(vip)
				if err != nil {
					return fmt.Errorf("--vip %q: %w", vip, err)
				}
				if q.Netns == "" {
					return fmt.Errorf("--vip needs --netns: the namespace the call starts from")
				}
				q.VIP = a
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
	env, _, err := loadEnv(ctx, src, q)
	return env, err
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
