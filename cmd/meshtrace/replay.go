package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

func init() {
	var (
		src     sourceFlags
		out     string
		q       topology.Query
		live    bool
		packets bool
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
			rd := &trace.Reader{}
			var readErr error
			for _, f := range files {
				if err := rd.ReadFile(f); err != nil && readErr == nil {
					readErr = err
				}
			}
			var env *trace.Env
			if live || src.from != "" || src.meshName != "" {
				eq := q
				if eq.Port == 0 || eq.Proto == "" {
					proto, port := rd.GuessPort()
					if eq.Port == 0 {
						eq.Port = port
					}
					if eq.Proto == "" {
						eq.Proto = proto
					}
				}
				if eq.Port != 0 {
					var err error
					if env, _, err = loadEnv(cmd.Context(), src, eq); err != nil {
						return err
					}
				}
			}
			res, _ := trace.Analyse(rd, env, trace.ReplayOptions{Proto: q.Proto, Port: q.Port, PacketHops: packets}, readErr)
			return report(cmd.OutOrStdout(), out, res, false)
		},
	}
	src.add(c)
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "text", "text or json")
	intFlag(f, &q.Port, "port", 0, portRange, "only flows to this published port (default: all; the first flow's port names the path)")
	f.StringVar(&q.Proto, "proto", "", "only tcp or udp flows")
	f.BoolVar(&live, "live", false, "map the files onto this host's namespaces and rules")
	f.BoolVar(&packets, "packets", false, "list every packet's sightings in the JSON (not only the first request's and reply's)")
	root.AddCommand(c)
}
