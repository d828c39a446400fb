package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/progress"
	"github.com/meshtrace/meshtrace/mesh"
)

func init() {
	var (
		o              inspect.CollectOptions
		meshName, node string
		allowModules   bool
		inproc         inProcess
	)
	c := &cobra.Command{
		Use:   "collect DIR | collect --in-process --stdout-tar",
		Short: "write this host's state (ip addr/route/neigh, bridge fdb, iptables-save, ipvsadm, sysctl, ss, conntrack, docker inspect) as a bundle that --from DIR reads back",
		Long: `collect runs, inside every network namespace of the node, the commands an operator would
(ip -d addr, iptables-save -c, ipvsadm-save -n, ipvsadm -L --timeout, ip -4 route, ip -4 neigh,
bridge fdb, sysctl of the forwarding/rp_filter/conntrack/IPVS knobs, ss -Htuln, conntrack -L)
and saves their output, plus the Docker engine's network/container/service JSON when a daemon
answers, as a bundle directory: doctor --from DIR then runs every check but the live probe.
What cannot be collected is named in DIR/NOTES.txt. It changes nothing on the node, and loads
no kernel module: a command that would load a missing one does not run (--allow-module-load).
When standard error is a terminal, it shows there how many namespaces are done.`,
		Args: func(cmd *cobra.Command, args []string) error { return inproc.args(cmd, args) },
		RunE: func(cmd *cobra.Command, args []string) error {
			o := o
			if allowModules {
				o.Modules = kmod.Allow{}
			}
			if meshName != "" {
				host, dir, err := mesh.Locate(meshName, node)
				if err != nil {
					return err
				}
				o.HostNetns, o.NetnsDirs, o.NoDocker = host, []string{dir}, true
			}
			if inproc.on {
				return inproc.run(cmd, inspect.Options{HostNetns: o.HostNetns, NetnsDirs: o.NetnsDirs, Modules: o.Modules}, o.NoDocker, args)
			}
			o.Progress = progress.Stderr("collect: namespaces")
			if err := inspect.Collect(cmd.Context(), o, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bundle written to %s; read it with: meshtrace inspect --from %s\n", args[0], args[0])
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&meshName, "mesh", "", "collect a node of the built-in mesh NAME (with --node)")
	f.StringVar(&node, "node", "node0", "the mesh node to collect (with --mesh)")
	f.StringVar(&o.HostNetns, "host-netns", "", "namespace file that plays host (default PID 1's)")
	f.StringSliceVar(&o.NetnsDirs, "netns-dir", nil, "directories of namespace files (default /run/docker/netns, /run/netns)")
	f.BoolVar(&allowModules, "allow-module-load", false, "let the commands load the kernel modules they use (ipvsadm: ip_vs, conntrack: nf_conntrack_netlink, "+
		"iptables-nft-save: nf_tables, ss: inet_diag, ...); by default a command that would load a missing module does not run, or reads /proc instead, and NOTES.txt says so")
	inproc.add(c)
	root.AddCommand(c)
}
