package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/swarm/load"
	"github.com/meshtrace/meshtrace/topology"
)

// swarmCmd is `meshtrace swarm`: the whole swarm at once.
var swarmCmd = &cobra.Command{
	Use:   "swarm",
	Short: "every node of a swarm at once: collect (a global job), check (compare the nodes), path (every node to every backend), tui",
	Long: `swarm reads every node of a Docker Swarm and compares them. A routing-mesh
failure is often one node out of step with the rest: a stale IPVS table, an FDB
entry still pointing at a drained node, a port published on some nodes only,
gossip that stopped.

  swarm collect DIR    on a manager: runs meshtrace on every node as a global job
                       (the Docker API, no ssh) and writes DIR/<node>/, a bundle each
  swarm check          compares the nodes: --from DIR, --mesh NAME, or live (collects first)
  swarm path --port N  the published port from every node to every backend
  swarm tui            node x service on one screen, a cell opening that node's path`,
}

func init() { root.AddCommand(swarmCmd) }

// swarmSource selects the nodes of a swarm command: bundles (--from DIR),
// the built-in mesh (--mesh NAME), or live (a collect first).
type swarmSource struct {
	from, meshName string
	collect        collectFlags
	// check: bundles are read for swarm.Checker only (load.CheckDir).
	check bool
}

func (s *swarmSource) add(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&s.from, "from", "", "read the node bundles of DIR (DIR/<node>/, as `meshtrace swarm collect DIR` writes them)")
	f.StringVar(&s.meshName, "mesh", "", "read every node of the built-in mesh NAME")
	s.collect.add(c, "without --from or --mesh: ")
}

// each hands every node of the swarm to fn (concurrently for bundles).
func (s *swarmSource) each(cmd *cobra.Command, fn func(swarm.Node)) error {
	ctx := cmd.Context()
	switch {
	case s.from != "" && s.meshName != "":
		return source.ErrExclusive
	case s.from != "":
		return s.dir(ctx, s.from, fn)
	case s.meshName != "":
		nodes, err := load.Mesh(ctx, s.meshName, source.Spec{})
		for _, n := range nodes {
			fn(n)
		}
		return err
	}
	dir, err := os.MkdirTemp("", "meshtrace-swarm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "nodes")
	if _, err := s.collect.run(ctx, out, progressWriter(cmd)); err != nil {
		return err
	}
	return s.dir(ctx, out, fn)
}

// dir reads the bundles under dir, whole or for the check.
func (s *swarmSource) dir(ctx context.Context, dir string, fn func(swarm.Node)) error {
	if s.check {
		return load.CheckDir(ctx, dir, fn)
	}
	return load.Dir(ctx, dir, fn)
}

// nodes is every node of the swarm, in name order.
func (s *swarmSource) nodes(cmd *cobra.Command) ([]swarm.Node, error) {
	var mu sync.Mutex
	var nodes []swarm.Node
	err := s.each(cmd, func(n swarm.Node) {
		mu.Lock()
		nodes = append(nodes, n)
		mu.Unlock()
	})
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, err
}

func init() {
	var (
		src swarmSource
		out string
	)
	c := &cobra.Command{
		Use:   "check",
		Short: "compare every node of the swarm with the others: load balancers, overlay FDBs, published ports, overlay settings, IPsec, gossip",
		Long: `check compares the nodes of a swarm, per service and per node:
  backends   each load balancer's real servers (the ingress sandbox's, each lb_'s)
             against the tasks of its service that run: matched by service, never by
             firewall mark (each node allocates its own marks);
  fdb        each overlay's neighbour and FDB entries for every remote endpoint against
             the node it is on;
  published  the published ports, on every node (host DNAT, sandbox MARK);
  vni, mtu, subnet, dataport   each overlay's VXLAN id, MTU, subnet and VXLAN port;
  ipvs, sysctl, firewall       IPVS in the kernel, the load balancers' IPVS sysctls,
             the iptables backend;
  spi        encrypted overlays: every outbound ESP SA has its inbound twin on the peer;
  gossip     each network's NetworkDB peers (docker network inspect --verbose).
The nodes come from --from DIR (DIR/<node>/, one bundle each), --mesh NAME, or, live,
from a swarm collect into a temporary directory first (run on a manager).
What a node's bundle does not carry is not checked there (listed under NOT
CHECKED), never a divergence. Output: a node x check matrix, then each finding;
-o json: {"consistent", "nodes", "findings": [{"node","code","severity","service",
"summary","evidence",...}], "not_checked"}.
Exit status: 1 when a node is out of step (a finding above info), else 4 when a
check could not run on some node, else 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			if os.Getenv("GOGC") == "" {
				// Fifty bundles read at full speed: the collector's
				// default pace costs more than the memory it saves.
				debug.SetGCPercent(200)
			}
			var k swarm.Checker
			src.check = true
			if err := src.each(cmd, k.Add); err != nil {
				return err
			}
			r := k.Report()
			return writeReport(cmd, out, r, func(w io.Writer) error { return swarm.WriteText(w, r) })
		},
	}
	src.add(c)
	c.Flags().StringVarP(&out, "output", "o", "text", "text or json")
	swarmCmd.AddCommand(c)
}

// writeReport writes r as JSON (-o json) or as text, then exits with r's
// status.
func writeReport(cmd *cobra.Command, out string, r interface{ Exit() int }, text func(io.Writer) error) error {
	var err error
	if out == "json" {
		err = topology.WriteJSON(cmd.OutOrStdout(), r)
	} else {
		err = text(cmd.OutOrStdout())
	}
	if err != nil {
		return err
	}
	if code := r.Exit(); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// background is a context for cleanups that must run after ^C.
func background() context.Context { return context.Background() }
