package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/topology"
)

func init() {
	var (
		src   swarmSource
		out   string
		proto string
		port  int
	)
	c := &cobra.Command{
		Use:   "path --port N",
		Short: "a published port from every node of the swarm to every backend: a node x task matrix, each break named",
		Long: `path evaluates the published port on every node (the same evaluation as
meshtrace path) and joins them: a row per node the client enters by, a column per
task any node's load balancer sends to. A cell is ok (complete), BROKEN or ? (part of
it was not collected). A remote task's cell is the entry node's part, to the
overlay, then the task's node's part (its REDIRECT, its listener). A task this node's
balancer does not send to while others do is broken there (not-a-backend); a node
that does not publish the port breaks its whole row (not-published).
The nodes come from --from DIR, --mesh NAME, or live (a swarm collect first).
Exit status: 0 every cell complete, 3 a cell broken, 4 a cell unknown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			if port <= 0 || port > 65535 {
				return fmt.Errorf("--port must be 1-65535")
			}
			if proto != "tcp" && proto != "udp" {
				return fmt.Errorf("--proto %q: want tcp or udp", proto)
			}
			nodes, err := src.nodes(cmd)
			if err != nil {
				return err
			}
			r := swarm.Paths(nodes, topology.Query{Proto: proto, Port: port})
			return writeReport(cmd, out, r, func(w io.Writer) error { return swarm.WritePathText(w, r) })
		},
	}
	src.add(c)
	f := c.Flags()
	f.IntVar(&port, "port", 0, "the published port")
	f.StringVar(&proto, "proto", "tcp", "tcp or udp")
	f.StringVarP(&out, "output", "o", "text", "text or json")
	swarmCmd.AddCommand(c)
}
