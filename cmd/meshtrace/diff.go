package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/diff"
	"github.com/meshtrace/meshtrace/source"
)

func init() {
	var (
		src        sourceFlags
		out        string
		noCounters bool
	)
	c := &cobra.Command{
		Use:   "diff BUNDLE_A [BUNDLE_B]",
		Short: "say what changed on a node between two snapshots (bundles, or a bundle and now)",
		Long: `diff compares two readings of one node: BUNDLE_A (written by meshtrace collect)
with BUNDLE_B, or, without BUNDLE_B, with the node read now (this host live, or
--mesh NAME --node NODE). Namespaces are matched by name. It lists, per namespace:
rules added, removed or moved (matched by their text within each table and chain),
chain policies, user chains; IPVS services, real servers, weights and timeouts (and
the iptables emulation's); links (added, removed, made anew, up/down, MTU, MAC,
master, peer, VXLAN, addresses); routes; neighbours; FDB entries; sysctls;
listening sockets; xfrm SAs and policies (by SPI; keys are never read); Docker
tasks (added, removed, moved to another node, replaced, readdressed); and every
counter that moved (rule and policy counters, /proc/net/snmp and netstat,
nf_conntrack stats, link statistics, IPVS and SA counters).
What the kernel changes on its own, from traffic or autoconfiguration (counters,
learned neighbours and FDB entries, multicast neighbours, IPv6 link-local addresses,
the conntrack count) is reported and marked "auto"; a learned neighbour moving between
reachable and stale is not a change. What one side did not collect is not a
change: it is listed as "not compared (not collected in A/B)", per namespace.

-o json prints {"schema_version": 1, "a": SOURCE, "b": SOURCE,
  "changes": [{"netns", "kind", "op", "summary", "object", "field", "before", "after",
               "table", "chain", "rule", "position", "from", "backend", "counter", "auto"}],
  "not_compared": [{"netns", "area", "reason"}]}
with kinds netns-added, netns-removed, rule-added, rule-removed, rule-moved,
chain-added, chain-removed, policy-changed, backend-changed, counter-moved
(counter: the topology.CounterDelta), ipvs-changed, link-changed, route-changed,
neigh-changed, fdb-changed, sysctl-changed, socket-changed, xfrm-changed,
task-changed; ops added, removed, changed, moved (see package diff).

Exit status: 0 nothing changed (counters and learned entries aside) and everything
was compared; 5 something changed; 4 nothing changed among what was compared, but
something was not compared; 1 other errors.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			specB := src.spec()
			if len(args) == 2 {
				if src.from != "" || src.meshName != "" {
					return fmt.Errorf("BUNDLE_B and --from/--mesh are exclusive: B is one source")
				}
				specB = source.Spec{Bundle: args[1]}
			}
			// Conntrack entries are not compared; counters are.
			specB.NoConntrack, specB.Counters = true, true
			a, err := source.Load(cmd.Context(), source.Spec{Bundle: args[0]})
			if err != nil {
				return fmt.Errorf("A: %w", err)
			}
			b, err := source.Load(cmd.Context(), specB)
			if err != nil {
				return fmt.Errorf("B: %w", err)
			}
			r := diff.Compare(a, b)
			o := diff.WriteOptions{JSON: out == "json", NoCounters: noCounters}
			if err := diff.Write(cmd.OutOrStdout(), r, o); err != nil {
				return err
			}
			return exitStatus(r.Exit())
		},
	}
	src.add(c)
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "text", "text or json")
	f.BoolVar(&noCounters, "no-counters", false, "leave the counters that moved out of the output")
	root.AddCommand(c)
}
