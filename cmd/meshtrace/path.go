package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/internal/textsafe"
	"github.com/meshtrace/meshtrace/topology"
)

func init() {
	var (
		src      sourceFlags
		out      string
		q        topology.Query
		vip      string
		dns      string
		fromTask string
		dnsProto string
		service  string
	)
	c := &cobra.Command{
		Use:   "path",
		Short: "reconstruct the path of a service (--service NAME [--from-task TASK]), a published port (--port), a service VIP (--vip --netns) or a name lookup (--dns --from-task)",
		Long: `path --service NAME gives the paths of the service's published ports; with
--from-task TASK, the east-west path from that task to the service's VIP, to the
service's target port (or --port). Names come from Docker's metadata (live, a
bundle's docker/*.json, the built-in mesh's state); an unknown service or task is an
error listing the known ones. With -o json, --service prints
{"schema_version", "service", "paths": [path, ...]} (docs/json.md).

path evaluates the node's rules for a concrete packet, in netfilter hook order,
across namespaces: host DNAT -> docker_gwbridge -> ingress sandbox (MARK, IPVS, SNAT)
-> each backend task (REDIRECT), or from a task to a service VIP (east-west: first
how the caller reaches the VIP; a caller with no interface in the VIP's network
breaks with vip-unreachable, saying where its packet goes instead), or of a name
lookup from a task (--dns NAME --from-task TASK): 127.0.0.11:53, Docker's DNAT to the
task's embedded DNS server, its listener in the task, and the answer Docker's
metadata gives (the service's VIP, or its tasks' addresses for tasks.NAME and dnsrr
services; other names are forwarded). TASK (and --netns) may be a task name (web.1),
its container's name or ID, or a namespace's name.
What was not collected is never read as "no rules": the path stops there with an
UNKNOWN hop saying what is missing, and the verdict is unknown, never complete.
Exit status: 0 complete, 3 broken (the break hop says where and why), 4 unknown
(part of the path depends on data that was not collected), 2 not published,
1 other errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := q
			if out != "text" && out != "json" {
				return fmt.Errorf("unknown output %q: want text or json", out)
			}
			if dns != "" {
				return dnsPath(cmd, &src, out, dns, fromTask, dnsProto)
			}
			if service != "" {
				sq := topology.ServiceQuery{Service: service, From: fromTask, Port: q.Port}
				if cmd.Flags().Changed("proto") {
					sq.Proto = q.Proto
				}
				return servicePath(cmd, &src, out, sq)
			}
			if fromTask != "" {
				return fmt.Errorf("--from-task goes with --service or --dns (or give --vip and --netns)")
			}
			if err := vipQuery(vip, &q); err != nil {
				return err
			}
			if vip == "" && (q.Port <= 0 || q.Port > 65535) {
				return fmt.Errorf("--port must be 1-65535")
			}
			if err := checkProto("--proto", q.Proto); err != nil {
				return err
			}
			m, err := src.load(cmd.Context())
			if err != nil {
				return err
			}
			if q.VIP.IsValid() {
				ns, err := topology.TaskNetns(m, q.Netns)
				if err != nil {
					return fmt.Errorf("--netns: %w", err)
				}
				q.Netns = ns.Name
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
			return verdictExit(p.Verdict)
		},
	}
	src.add(c)
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "text", "text or json")
	intFlag(f, &q.Port, "port", 0, portRange, "published port (or the VIP's service port)")
	f.StringVar(&q.Proto, "proto", "tcp", "tcp or udp")
	f.StringVar(&vip, "vip", "", "service VIP for the east-west path")
	f.StringVar(&q.Netns, "netns", "", "namespace or task the east-west call starts from (with --vip)")
	f.StringVar(&dns, "dns", "", "a name to look up from a task through Docker's embedded DNS (with --from-task)")
	f.StringVar(&service, "service", "", "a service by name: its published ports' paths, or with --from-task the path to its VIP")
	f.StringVar(&fromTask, "from-task", "", "the task (cli.1, its full name or its netns) the call (--service) or lookup (--dns) starts from")
	f.StringVar(&dnsProto, "dns-proto", "udp", "with --dns: udp or tcp")
	// The shell completes services and tasks by name from the source
	// the command line names so far (--from, --mesh, or this host).
	names := func(list func(*topology.Model) []string) cobra.CompletionFunc {
		return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			m, err := src.load(context.Background())
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
			}
			var out []cobra.Completion
			for _, n := range list(m) {
				out = append(out, textsafe.String(n)) // names from a bundle
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
	}
	c.RegisterFlagCompletionFunc("service", names(topology.ServiceNames))
	for _, task := range []string{"from-task", "netns"} {
		c.RegisterFlagCompletionFunc(task, names(topology.TaskNames))
	}
	root.AddCommand(c)
}

// verdictExit is path's exit status for a verdict: 0 complete, 3 broken,
// 4 unknown.
func verdictExit(v topology.Verdict) error {
	switch v {
	case topology.VerdictComplete:
		return nil
	case topology.VerdictUnknown:
		return &exitError{code: 4}
	}
	return &exitError{code: 3}
}

// checkProto refuses a protocol other than tcp and udp, naming the flag.
func checkProto(flag, proto string) error {
	if proto != "tcp" && proto != "udp" {
		return fmt.Errorf("%s %q: want tcp or udp", flag, proto)
	}
	return nil
}

// dnsPath is `path --dns NAME --from-task TASK`.
func dnsPath(cmd *cobra.Command, src *sourceFlags, out, name, task, proto string) error {
	if task == "" {
		return fmt.Errorf("--dns needs --from-task: the task the lookup starts from")
	}
	if err := checkProto("--dns-proto", proto); err != nil {
		return err
	}
	m, err := src.load(cmd.Context())
	if err != nil {
		return err
	}
	ns, err := topology.TaskNetns(m, task)
	if err != nil {
		return fmt.Errorf("--from-task: %w", err)
	}
	p, err := topology.FindDNSPath(m, topology.DNSQuery{Name: name, From: ns.Name, Proto: proto})
	if err != nil {
		return err
	}
	if out == "json" {
		err = topology.WriteJSON(cmd.OutOrStdout(), p)
	} else {
		err = topology.WriteDNSPathText(cmd.OutOrStdout(), p)
	}
	if err != nil {
		return err
	}
	return verdictExit(p.Verdict)
}

// servicePath is `path --service NAME [--from-task TASK]`: every path the
// service stands for (topology.ServiceQueries), the worst verdict's exit
// status.
func servicePath(cmd *cobra.Command, src *sourceFlags, out string, sq topology.ServiceQuery) error {
	if sq.Proto != "" {
		if err := checkProto("--proto", sq.Proto); err != nil {
			return err
		}
	}
	m, err := src.load(cmd.Context())
	if err != nil {
		return err
	}
	qs, err := topology.ServiceQueries(m, sq)
	if err != nil {
		return err
	}
	doc := topology.ServicePaths{Service: sq.Service, Paths: []*topology.Path{}}
	verdict := topology.VerdictComplete
	for _, q := range qs {
		p, err := topology.FindPath(m, q)
		var np *topology.NotPublishedError
		if errors.As(err, &np) {
			return &exitError{code: 2, msg: fmt.Sprintf("service %s: %s, though Docker's metadata publishes it", sq.Service, np)}
		}
		if err != nil {
			return err
		}
		doc.Paths = append(doc.Paths, p)
		verdict = topology.WorseVerdict(verdict, p.Verdict)
	}
	w := cmd.OutOrStdout()
	if out == "json" {
		err = topology.WriteJSON(w, doc)
	} else {
		for i, p := range doc.Paths {
			if i > 0 {
				fmt.Fprintln(w)
			}
			if err = topology.WritePathText(w, p); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	return verdictExit(verdict)
}
