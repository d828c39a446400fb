package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/topology"
)

func init() {
	var (
		src sourceFlags
		out string
	)
	c := &cobra.Command{
		Use:   "inspect",
		Short: "read namespaces, links, firewall, IPVS and conntrack into one topology and print it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := src.load(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch out {
			case "text":
				return topology.WriteInspectText(w, topology.NewReport(m))
			case "json":
				return topology.WriteJSON(w, topology.NewReport(m))
			case "dot":
				return topology.WriteDOT(w, m)
			}
			return fmt.Errorf("unknown output %q: want text, json or dot", out)
		},
	}
	src.add(c)
	c.Flags().StringVarP(&out, "output", "o", "text", "text, json or dot")
	root.AddCommand(c)
}
