package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/topology"
)

func init() {
	var keep bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "build a 2-node mesh, show the path of its published port, send requests, tear it down",
		Long: `demo is the tour: it brings up a Swarm-shaped routing mesh in network namespaces
(2 nodes, service web published on 8080 with 3 tasks), prints the path a packet to
node1:8080 takes (DNAT, MARK, load balancing, SNAT, REDIRECT, local and remote tasks),
sends a few requests from a client on the LAN and shows which task answered each, asks a
task's embedded DNS server (127.0.0.11) for the service and its tasks, and removes the mesh again (also on Ctrl-C or error). Needs root; touches nothing outside
its own namespaces.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needRoot("demo"); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, direct(cmd.OutOrStdout()), keep)
		},
	}
	c.Flags().BoolVar(&keep, "keep", false, "leave the mesh up at the end (remove it with `meshtrace mesh down --name NAME`)")
	root.AddCommand(c)
}

func runDemo(ctx context.Context, w io.Writer, keep bool) (err error) {
	start := time.Now()
	name := fmt.Sprintf("demo-%d", os.Getpid())
	web := mesh.ServiceSpec{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: 3}
	cfg := mesh.Config{Name: name, Nodes: 2, LB: mesh.LBAuto, Services: []mesh.ServiceSpec{web}}

	fmt.Fprintf(w, "== 1. mesh up: 2 nodes, service web published on :8080 -> :80, 3 tasks\n")
	st, err := mesh.Up(ctx, cfg, mesh.Options{})
	if err != nil {
		return err
	}
	if keep {
		defer fmt.Fprintf(w, "\nthe mesh stays up: meshtrace mesh down --name %s\n", name)
	} else {
		defer func() {
			r, derr := mesh.Down(name, mesh.Options{})
			if derr != nil && err == nil {
				err = derr
			}
			if derr == nil {
				fmt.Fprintf(w, "\n== 4. mesh down: removed %d namespaces and the agent; nothing left (%s in all)\n",
					r.Namespaces, time.Since(start).Round(time.Millisecond))
			}
		}()
	}
	fmt.Fprintf(w, "built in %s, load balancing: %s\n", time.Since(start).Round(time.Millisecond), st.LB)
	for _, t := range st.Services[0].Tasks {
		fmt.Fprintf(w, "  %s on %s (%s)\n", t.Name, t.Node, t.IP)
	}

	node := st.Nodes[1]
	fmt.Fprintf(w, "\n== 2. meshtrace path --mesh %s --node %s --port 8080\n", name, node.Name)
	src := sourceFlags{meshName: name, node: node.Name, firewall: "auto"}
	m, err := src.load(ctx)
	if err != nil {
		return err
	}
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		return err
	}
	if err := topology.WritePathText(w, p); err != nil {
		return err
	}

	fmt.Fprintf(w, "\n== 3. requests from the client (%s) to each node's published port\n", st.Client.IP)
	for i := range 6 {
		n := st.Nodes[i%len(st.Nodes)]
		addr := fmt.Sprintf("%s:%d", n.IP, web.Published)
		r, err := mesh.Ask(ctx, st.Client.Netns, "tcp", addr, "")
		if err != nil {
			return fmt.Errorf("request to %s: %w", addr, err)
		}
		where := "?"
		if t, _, ok := st.Task(r.Task); ok {
			where = "on " + t.Node
			if t.Node != n.Name {
				where += ", through VXLAN"
			}
		}
		fmt.Fprintf(w, "  curl %-20s -> answered by %s (%s)\n", addr, r.Task, where)
	}

	// Service discovery, as a task sees it: 127.0.0.11:53, DNATed by
	// the task's own rules to its embedded DNS server.
	t := st.Services[0].Tasks[0]
	fmt.Fprintf(w, "\n   %s asks Docker's embedded DNS at 127.0.0.11 (DNATed to its resolver's port %d/udp)\n", t.Name, t.Resolver.UDPPort)
	for _, q := range []string{"web", "tasks.web"} {
		a, err := probe.Lookup(ctx, probe.Query{Netns: t.Netns, From: t.Name, Name: q})
		if err != nil {
			return err
		}
		slices.SortFunc(a.Addrs, netip.Addr.Compare)
		fmt.Fprintf(w, "  %-10s -> %v\n", q, a.Addrs)
	}
	return nil
}
