package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

func init() {
	var (
		keepAlive time.Duration
		src       sourceFlags
		out       string
		proto     string
		port      int
		probe     bool
		wait      time.Duration
	)
	c := &cobra.Command{
		Use:   "doctor",
		Short: "name what is broken in the routing mesh, where, and why",
		Long: `doctor checks the node's model: every published port's path (raw and filter
tables, DNAT, marks, IPVS services and their real servers, SNAT, each task's REDIRECT
and listener), every service VIP's east-west path from a task on its network, each
task's embedded DNS (the DNAT of 127.0.0.11:53 and its listener), MTUs along the
overlay, forwarding, reverse-path filtering, VXLAN, gossip (7946) and, for encrypted
overlays, ESP through the host firewall, the IPsec state for each other node, the
other iptables backend, subnets that overlap the overlays', the source address the
route to each other node picks, stale overlay neighbours, conntrack, and IPVS
settings. A host that is no swarm node gets one note saying so. Each finding has a
stable code (README lists them), the namespace, the evidence, the command to confirm
it by hand and the fix. --probe also makes one
request per published port whose path looks complete (from the mesh's client to the
node with --mesh, one per task; to 127.0.0.1 on this host) and reports no-answer when
it fails, while a capture on the uplink and the overlays' VXLAN devices checks the
TCP/UDP checksums of what arrives (bad-checksum; never a frame the kernel marks
CHECKSUM_PARTIAL).
doctor takes every port's verdict from the same analysis as path. What was not
collected is never a fault and never healthy: it is listed under NOT CHECKED with
why, and the last line lists the checks run and those skipped for lack of data.
Exit status: 1 when a finding is above info; else 4 when something could not be
checked (not collected); else 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			m, err := src.load(cmd.Context())
			if err != nil {
				return err
			}
			o := doctor.Options{Proto: proto, Port: port, KeepAlive: keepAlive}
			if probe {
				if o.Probe, err = probeFunc(cmd.Context(), &src, wait, m); err != nil {
					return err
				}
				defer watchChecksums(m, &src, &o)()
			}
			r := doctor.Check(m, o)
			if out == "json" {
				err = topology.WriteJSON(cmd.OutOrStdout(), r)
			} else {
				err = doctor.WriteText(cmd.OutOrStdout(), r)
			}
			if err != nil {
				return err
			}
			if code := r.Exit(); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	src.add(c)
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "text", "text or json")
	intFlag(f, &port, "port", 0, portRange, "check only this published port")
	f.StringVar(&proto, "proto", "", "with --port: tcp or udp")
	f.BoolVar(&probe, "probe", false, "make one live request per published port (not with --from)")
	durationFlag(f, &wait, "probe-timeout", 2*time.Second, probeTimeout, "how long a probe waits for its answer")
	durationFlag(f, &keepAlive, "keepalive", 0, keepAliveRange, "the application's idle keep-alive, compared with IPVS's TCP idle timeout (e.g. 20m)")
	root.AddCommand(c)
}
