package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/inspect"
)

func init() {
	var o inspect.CollectOptions
	c := &cobra.Command{
		Use:   "collect DIR",
		Short: "write this host's state (ip addr, iptables-save, ipvsadm, docker inspect) as a bundle that --from DIR reads back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := inspect.Collect(cmd.Context(), o, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bundle written to %s; read it with: meshtrace inspect --from %s\n", args[0], args[0])
			return nil
		},
	}
	root.AddCommand(c)
}
