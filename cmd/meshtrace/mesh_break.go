package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/mesh/fault"
)

var _ = addMeshSubcommands(meshBreakCmd, meshRepairCmd)

func addMeshSubcommands(fs ...func(*string) *cobra.Command) bool {
	meshSubcommands = append(meshSubcommands, fs...)
	return true
}

func meshBreakCmd(runDir *string) *cobra.Command {
	var (
		name, out string
		req       fault.Request
		list      bool
	)
	c := &cobra.Command{
		Use:   "break [--name NAME] FAULT [--node NODE] [--service S] | --list",
		Short: "inject one fault into a mesh (undo with mesh repair); --list shows them",
		Long: `break injects one fault into a running mesh, aimed at one doctor check: it changes a
rule, a sysctl, a link, a route, an FDB or neighbour entry, a tc program or a task's
server inside the mesh's own namespaces (never the real root namespace), and records how
to undo it exactly in the mesh's directory, so ` + "`meshtrace mesh repair`" + ` puts everything
back, from any process. The fault changes the node --node names and no other (the first
node by default): one node out of step with the rest of the mesh. --service defaults to
the first published service the fault can use. --list marks the faults doctor has no
detector for yet; -o json lists the evidence a detector should see for each.`,
		Example: `  meshtrace mesh break --list
  meshtrace mesh break drop-mark --node node0 --service web
  meshtrace mesh break stale-backend --node node2
  meshtrace doctor --mesh demo --node node0
  meshtrace mesh repair`,
		Args: func(cmd *cobra.Command, args []string) error {
			if list {
				return cobra.NoArgs(cmd, args)
			}
			if len(args) != 1 {
				return fmt.Errorf("mesh break: want one FAULT (see `meshtrace mesh break --list`), got %d arguments", len(args))
			}
			return nil
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if list {
				return nil
			}
			return needRoot("mesh break")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			w := cmd.OutOrStdout()
			if list {
				if out == "json" {
					return writeIndented(cmd, fault.Kinds())
				}
				return fault.WriteList(w)
			}
			req.Fault = args[0]
			f, err := fault.Break(name, req, fault.Options{RunDir: *runDir})
			if err != nil {
				return err
			}
			if out == "json" {
				return writeIndented(cmd, f)
			}
			fault.Write(w, name, f)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", mesh.DefaultName, "mesh name")
	f.StringVar(&req.Node, "node", "", "the node to break (default: the first)")
	f.StringVar(&req.Service, "service", "", "the service to break (default: the first the fault can use)")
	f.BoolVar(&list, "list", false, "list the faults: what each does and the doctor code that must catch it")
	f.StringVarP(&out, "output", "o", "text", "text or json")
	return c
}

func meshRepairCmd(runDir *string) *cobra.Command {
	var name, out string
	c := &cobra.Command{
		Use:   "repair [--name NAME]",
		Short: "undo every fault injected with mesh break, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			done, err := fault.Repair(name, fault.Options{RunDir: *runDir})
			if out == "json" {
				if done == nil {
					done = []fault.Fault{}
				}
				if werr := writeIndented(cmd, done); werr != nil && err == nil {
					err = werr
				}
				return err
			}
			w := cmd.OutOrStdout()
			if len(done) == 0 && err == nil {
				fmt.Fprintf(w, "mesh %s: no fault to repair\n", name)
			}
			for _, f := range done {
				fmt.Fprintf(w, "repaired fault %d: %s on %s (%s)\n", f.ID, f.Kind, f.Node, f.Detail)
			}
			return err
		},
	}
	c.Flags().StringVar(&name, "name", mesh.DefaultName, "mesh name")
	c.Flags().StringVarP(&out, "output", "o", "text", "text or json")
	return c
}

func writeIndented(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
