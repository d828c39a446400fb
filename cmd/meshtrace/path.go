package main

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/topology"
)

func init() {
	var (
		src sourceFlags
		out string
		q   topology.Query
		vip string
	)
	c := &cobra.Command{
		Use:   "path",
		Short: "reconstruct the path of a published port (--port) or a service VIP (--vip --netns)",
		Long: `path evaluates the node's rules for a concrete packet, in netfilter hook order,
across namespaces: host DNAT -> docker_gwbridge -> ingress sandbox (MARK, IPVS, SNAT)
-> each backend task (REDIRECT), or from a task to a service VIP (east-west: first
how the caller reaches the VIP; a caller with no interface in the VIP's network
breaks with vip-unreachable, saying where its packet goes instead).
What was not collected is never read as "no rules": the path stops there with an
UNKNOWN hop saying what is missing, and the verdict is unknown, never complete.
Exit status: 0 complete, 3 broken (the break hop says where and why), 4 unknown
(part of the path depends on data that was not collected), 2 not published,
1 other errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := q
			if vip != "" {
				a, err := netip.ParseAddr(vip)
				if err != nil {
					return fmt.Errorf("--vip %q: %w", vip, err)
				}
				if q.Netns == "" {
					return fmt.Errorf("--vip needs --netns: the namespace the call starts from")
				}
				q.VIP = a
			} else if q.Port <= 0 || q.Port > 65535 {
				return fmt.Errorf("--port must be 1-65535")
			}
			if q.Proto != "tcp" && q.Proto != "udp" {
				return fmt.Errorf("--proto %q: want tcp or udp", q.Proto)
			}
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			m, err := src.load(cmd.Context())
			if err != nil {
				return err
			}
			p, err := topology.FindPath(m, q)
			var np *topology.NotPublishedError
			if errors.As(err, &np) {
				return &exitError{code: 2, msg: np.Error()}
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out == "json" {
				err = topology.WriteJSON(w, p)
			} else {
				err = topology.WritePathText(w, p)
			}
			if err != nil {
				return err
			}
			switch p.Verdict {
			case topology.VerdictComplete:
				return nil
			case topology.VerdictUnknown:
				return &exitError{code: 4}
			}
			return &exitError{code: 3}
		},
	}
	src.add(c)
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "text", "text or json")
	intFlag(f, &q.Port, "port", 0, portRange, "published port (or the VIP's service port)")
	f.StringVar(&q.Proto, "proto", "tcp", "tcp or udp")
	f.StringVar(&vip, "vip", "", "service VIP for the east-west path")
	f.StringVar(&q.Netns, "netns", "", "namespace the east-west call starts from (with --vip)")
	root.AddCommand(c)
}
