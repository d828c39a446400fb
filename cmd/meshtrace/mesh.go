package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/mesh"
)

func init() {
	var runDir string
	c := &cobra.Command{
		Use:   "mesh",
		Short: "build a Swarm-shaped routing mesh in network namespaces (no Docker needed)",
		Long: `mesh builds, shows and removes a real routing mesh made of network namespaces,
shaped like Docker Swarm nodes: per node a "host" netns (docker_gwbridge, DOCKER-INGRESS),
an ingress sandbox (MARK + IPVS or its iptables emulation + SNAT), the ingress overlay
(br0 + VXLAN over an underlay LAN) and one netns per task, with a client on the LAN.
The root namespace is never touched. Every inspection command reads a mesh node with
--mesh NAME --node NODE.`,
	}
	c.PersistentFlags().StringVar(&runDir, "run-dir", mesh.DefaultRunDir, "directory holding the meshes")
	c.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Name() != "ls" {
			return needRoot("mesh " + cmd.Name())
		}
		return nil
	}
	c.PersistentFlags().MarkHidden("run-dir")
	c.AddCommand(meshUpCmd(&runDir), meshDownCmd(&runDir), meshStatusCmd(&runDir),
		meshExecCmd(&runDir), meshLsCmd(&runDir), meshAgentCmd(&runDir))
	for _, sub := range meshSubcommands {
		c.AddCommand(sub(&runDir))
	}
	root.AddCommand(c)
}

// meshSubcommands are `mesh` subcommands defined in other files (they
// register from a package-level var, which is set before any init runs).
var meshSubcommands []func(runDir *string) *cobra.Command

func meshUpCmd(runDir *string) *cobra.Command {
	var (
		cfg     mesh.Config
		specs   []string
		stallAt string
	)
	c := &cobra.Command{
		Use:   "up",
		Short: "build a mesh: --nodes N, --service NAME:PUBLISHED:TARGET[/udp]xREPLICAS ...",
		Example: `  meshtrace mesh up
  meshtrace mesh up --name lab --nodes 3 --service web:8080:80x3 --service dns:5353:53/udpx2 --lb iptables`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Nodes < 1 || cfg.Nodes > mesh.MaxNodes {
				return fmt.Errorf("--nodes %d: must be 1-%d", cfg.Nodes, mesh.MaxNodes)
			}
			for _, s := range specs {
				sp, err := mesh.ParseService(s)
				if err != nil {
					return err
				}
				cfg.Services = append(cfg.Services, sp)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o := mesh.Options{RunDir: *runDir}
			if stallAt != "" {
				o.Hook = stallHook(ctx, filepath.Join(*runDir, cfg.WithDefaults().Name), stallAt)
			}
			start := time.Now()
			st, err := mesh.Up(ctx, cfg, o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			tasks := 0
			for _, s := range st.Services {
				tasks += len(s.Tasks)
			}
			fmt.Fprintf(w, "mesh %s is up in %s: %d nodes, %d services, %d tasks\n", st.Name,
				time.Since(start).Round(time.Millisecond), len(st.Nodes), len(st.Services), tasks)
			st.WriteText(w)
			st.WriteHowTo(w)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Name, "name", mesh.DefaultName, "mesh name")
	intFlag(f, &cfg.Nodes, "nodes", mesh.DefaultNodes, intRange{lo: 1, hi: mesh.MaxNodes}, "number of nodes")
	f.StringArrayVar(&specs, "service", nil, "service NAME:PUBLISHED:TARGET[/udp]xREPLICAS, repeatable (default "+mesh.DefaultService+")")
	f.StringVar(&cfg.LB, "lb", mesh.LBAuto, "load balancing: auto (IPVS when the kernel has it), ipvs or iptables")
	f.StringVar(&stallAt, "test-stall-at", "", "tests: stop before this step (netns, devices, veths, config, agent) and wait to be killed")
	f.MarkHidden("test-stall-at")
	return c
}

// needRoot fails early, and clearly, for commands that create or enter
// network namespaces.
func needRoot(what string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root (it creates and enters network namespaces)", what)
	}
	return nil
}

// stallHook makes `up` stop before every step named phase (netns,
// devices, veths, config: in every namespace that gets there; or agent),
// create DIR/stalled and wait until it is killed (or interrupted, which
// rolls back): the tests' way to leave a half-built mesh behind.
func stallHook(ctx context.Context, dir, phase string) func(string) error {
	return func(step string) error {
		if step != phase && !strings.HasPrefix(step, phase+" ") {
			return nil
		}
		if err := os.WriteFile(filepath.Join(dir, "stalled"), []byte(step+"\n"), 0o644); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}
}

func meshDownCmd(runDir *string) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "down",
		Short: "remove a mesh: agent, namespaces, links, rules, files (also a half-built one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := mesh.Down(name, mesh.Options{RunDir: *runDir})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if !r.Dir && r.Namespaces == 0 && len(r.Agents) == 0 {
				fmt.Fprintf(w, "mesh %s: nothing to remove\n", name)
				return nil
			}
			fmt.Fprintf(w, "mesh %s removed: %d namespaces, agent %v\n", name, r.Namespaces, r.Agents)
			for _, l := range r.Lingering {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s keeps its namespace alive until it exits\n", l)
			}
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", mesh.DefaultName, "mesh name")
	return c
}

func meshStatusCmd(runDir *string) *cobra.Command {
	var name, out string
	c := &cobra.Command{
		Use:   "status",
		Short: "show a mesh's nodes, services, tasks and health (exit 1 when unhealthy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			st, err := mesh.Status(cmd.Context(), *runDir, name)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				err = enc.Encode(st)
			} else {
				err = st.WriteText(w)
			}
			if err != nil {
				return err
			}
			if !st.Health.Healthy {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", mesh.DefaultName, "mesh name")
	c.Flags().StringVarP(&out, "output", "o", "text", "text or json")
	return c
}

func meshExecCmd(runDir *string) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "exec [--name NAME] NODE|NODE/NETNS|TASK|client|lan -- CMD [ARG...]",
		Short: "run a command inside a mesh namespace (a node's host netns, the client, ...)",
		Example: `  meshtrace mesh exec client -- curl -s 192.168.77.10:8080
  meshtrace mesh exec node0 -- iptables-save -t nat
  meshtrace mesh exec node1/ingress_sbox -- ip addr
  meshtrace mesh exec web.1 -- ss -ltn`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("usage: mesh exec [--name NAME] PLACE -- CMD [ARG...]")
			}
			// The child gets the terminal's signals itself; we wait for it.
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
			defer signal.Stop(sig)
			code, err := mesh.Exec(*runDir, name, args[0], args[1:], os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", mesh.DefaultName, "mesh name")
	return c
}

func meshLsCmd(runDir *string) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "ls",
		Short: "list meshes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := mesh.List(*runDir)
			if err != nil {
				return err
			}
			switch out {
			case "json":
				if ms == nil {
					ms = []mesh.Summary{}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(ms)
			case "text":
				mesh.WriteList(cmd.OutOrStdout(), ms)
				return nil
			}
			return fmt.Errorf("unknown output %q: want text or json", out)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "text", "text or json")
	return c
}

// meshAgentCmd is the mesh's long-running server process, started by `up`.
func meshAgentCmd(runDir *string) *cobra.Command {
	var (
		name    string
		readyFD int
	)
	c := &cobra.Command{
		Use:    "agent",
		Short:  "serve a mesh's tasks (started by mesh up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("mesh agent: --name is required")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			var ready *os.File
			if readyFD > 2 {
				ready = os.NewFile(uintptr(readyFD), "ready")
			}
			if ready == nil {
				return mesh.RunAgent(ctx, *runDir, name, nil)
			}
			return mesh.RunAgent(ctx, *runDir, name, ready)
		},
	}
	c.Flags().StringVar(&name, "name", "", "mesh name")
	c.Flags().IntVar(&readyFD, "ready-fd", 0, "file descriptor to write \"ready\" to")
	return c
}
