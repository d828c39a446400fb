package report

import (
	"fmt"
	"io"
	"strings"
)

// A measure's place in the README: the keys its figure shows and what it
// measures against what.
type about struct {
	name    string
	figure  []string // keys shown in the table, in order
	against string   // baseline / floor, one line
	what    string   // how it is measured, a few lines
}

// abouts are the measures of scripts/bench, in the order of issue 15's
// table.
var abouts = []about{
	{"inspect-200", []string{"ratio", "floor_ratio", "ms", "floor_ms", "loop_ms"},
		"`operator-loop.sh` / setns + the same netlink dumps and /proc reads, nothing decoded",
		"`inspect.Live` (what `meshtrace inspect` reads) of a Docker-shaped node: host, ingress_sbox, the ingress overlay and 197 tasks (3 links, 15 rules each). The baseline runs `ip netns exec NS iptables-save; ip -n NS addr` per namespace and `ipvsadm -Ln`; the floor (`bench/inspect/floor_linux.go`, which lists the requests) enters each namespace once and makes the reader's kernel requests into one buffer. The floor is parallel like the reader (4 workers per CPU, each a goroutine locked to its own thread while inside a namespace), and reads /proc/sys/net through private procfs instances as the reader does; `floor_sharedproc_*` is the same floor through /proc/sys/net itself. Best of 3 rounds, wall time; `*_cpu` keys are CPU time."},
	{"inspect-2000", []string{"per_netns_growth", "ms", "floor_growth", "floor_ratio"},
		"the same read at 200 namespaces, same run",
		"The same read of 2,000 namespaces: 9 Docker-shaped worlds of up to 220 tasks (a Linux bridge takes 1,024 ports) bind-mounted into one netns directory. `per_netns_growth` is the cost per namespace at 2,000 over that at 200; `floor_growth` the same for the floor, `cpu_growth` and `floor_cpu_growth` the same in CPU time. `floor_sharedproc_growth`: the floor through /proc/sys/net itself, where every namespace's ipv4, netfilter and bridge dentries share one dcache hash chain that each open walks (the kernel's cost the private procfs instances avoid)."},
	{"replay-1M", []string{"ratio", "floor_ratio", "seconds", "tshark_s", "floor_ms", "pcapgo_ms"},
		"`tshark -r FILE -q -z conv,tcp` / the file read and every record walked",
		"`meshtrace replay FILE` (text output through a pipe) on a 1,000,120-frame pcapng of a two-node mesh (14 capture points, 9,092 HTTP connections). The floor reads the file through a 1 MiB buffer and walks every pcapng block to its frame bytes; `pcapgo_ms` is gopacket's reader (which meshtrace uses) without decoding."},
	{"replay-1M-500k-flows", []string{"seconds", "rss_mb", "floor_ms", "out_mb"},
		"— (the read floor for scale)",
		"`meshtrace replay` of a pcap of 500,000 UDP request/reply exchanges at one point (1,000,000 frames, about 200 open at a time). `rss_mb` is the process's peak RSS (wait4)."},
	{"bundle-200MB", []string{"rss_mb", "seconds", "rules", "read_floor_ms"},
		"— (reading the file, for scale)",
		"`meshtrace inspect --from` of `fixtures/bundles/modern` with the host's `iptables-save -c` grown to 200 MB by a block-list in filter (about 1.9 M rules). `rss_mb` is the peak RSS."},
	{"trace-load", []string{"pps", "loss", "max_pps", "tcpdump_pps", "gen_ceiling_pps", "mesh_loss"},
		"`tcpdump -i any` in every node namespace, same traffic, same time",
		"`meshtrace trace --mesh` of a two-node mesh's UDP service (one task a node, 15 capture points) while a generator in the client namespace (32 UDP sockets, sendmmsg/recvmmsg) offers rising rates for 2 s each (a second try when a capture lost packets: the cores are shared). `pps`: packets through the mesh both ways at the highest rate with nothing lost at any hop (trace's socket drops 0, and the client point saw every packet sent and received), every lower rate lossless too; `loss`: what trace missed at `max_pps`, the highest rate reached. `mesh_loss`: requests the mesh's own echo servers did not answer. `gen_ceiling_pps`: the generator alone, to a sink on loopback."},
	{"mesh-updown", []string{"ratio", "ms", "shell_ms"},
		"`shell-mesh.sh` (the same mesh with `ip`/`iptables`)",
		"`meshtrace mesh up` + `down` of 2 nodes × 50 tasks (iptables load balancing, the agent serving every task); `TestShellEquivalent` checks both build the same kernel state."},
	{"swarm-check-50", []string{"ms", "per_node_growth", "per_mb_growth", "inspect_from_ms", "inspect_from_ms_per_node"},
		"— (50 nodes × 100 tasks of bundles)",
		"`meshtrace swarm check --from DIR -o json` over 50 synthetic node bundles of 100 tasks (20 services of 250 tasks, fwmarks differing per node; `bench/bundles/swarm.go`), the best of 3 runs, which must find the healthy swarm consistent; `inspect_from_ms` is `meshtrace inspect --from` of a node (every fifth one timed) times 50, what reading and analysing each bundle on its own costs. The same check over 10 and 25 nodes gives `ms_10`, `ms_25` (and `cpu_ms_N`, `mb_N`): `per_node_growth` is the time per node at 50 over that at 10. Each node's bundle holds cluster-wide state (every task as its load balancer's real server and its overlay's neighbour), so it grows with the swarm (`mb_per_node_growth`); `per_mb_growth` is the time per byte of bundles at 50 over that at 10, 1 when the cost is linear in what the nodes hold (`_cpu`: the same in CPU time)."},
}

// Readme writes bench/README.md from the lines of one run.
func Readme(w io.Writer, lines []Line) error {
	var b strings.Builder
	b.WriteString(`# Benchmarks

<!-- Generated by scripts/bench --readme from one run's output; do not edit. -->

` + "`scripts/bench`" + ` (as root) builds meshtrace, runs every measure below and prints one line per
measure, ` + "`bench NAME key=value ...`" + `. Each measure's baseline and floor are measured in the same
run: these machines are shared, and absolute times move by 2x between runs while ratios move less.
` + "`ratio`" + ` = baseline time / meshtrace time (higher is better); ` + "`floor_ratio`" + ` = meshtrace time /
floor time (lower is better). Tests never assert timings.

`)
	byName := map[string]Line{}
	var run *Line
	for i, l := range lines {
		if l.Name == "run" {
			run = &lines[i]
			continue
		}
		byName[l.Name] = l
	}
	if run != nil {
		fmt.Fprintf(&b, "Measured %s on %s cores (%s), load average %s at the start; the whole run took %s s.\n\n",
			run.Get("date"), run.Get("cores"), run.Get("kernel"), run.Get("load_start"), run.Get("seconds"))
	}
	b.WriteString("| measure | figure | target | met | baseline / floor |\n|---|---|---|---|---|\n")
	for _, a := range abouts {
		l, ok := byName[a.name]
		if !ok {
			fmt.Fprintf(&b, "| %s | not run | | | %s |\n", a.name, a.against)
			continue
		}
		var fig []string
		if v := l.Get("status"); v != "" {
			fig = append(fig, "status "+v)
		}
		for _, k := range a.figure {
			if v := l.Get(k); v != "" {
				fig = append(fig, k+" "+v)
			}
		}
		if e := l.Get("error"); e != "" {
			fig = append(fig, "error: "+e)
		}
		met := l.Get("met")
		if met == "" {
			met = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", a.name, strings.Join(fig, ", "), strings.ReplaceAll(l.Get("target"), ",", ", "), met, a.against)
	}
	b.WriteString("\n## What each measures\n\n")
	for _, a := range abouts {
		fmt.Fprintf(&b, "- **%s**: %s\n", a.name, a.what)
	}
	b.WriteString(`
Run one group: ` + "`scripts/bench -only inspect`" + ` (groups: inspect, replay, bundle, mesh, trace, swarm);
` + "`-profile DIR`" + ` also writes CPU and heap profiles of meshtrace's in-process runs. The measures
are Go code under ` + "`bench/`" + ` (one place computes each figure); the package tests run the same
code (` + "`MESHTRACE_BENCH=1 go test ./bench/... -v`" + `).

Not run by scripts/bench: ` + "`go test ./inspect/parse -run '^$' -bench IptablesSave20k`" + ` (parser rules/s),
` + "`go test ./inspect/nft -run '^$' -bench Read`" + ` (nf_tables read vs iptables-save), and the TUI keypress
budget (` + "[tui/README.md](tui/README.md)" + `).

## The run's lines

` + "```" + `
`)
	for _, l := range lines {
		b.WriteString(l.String())
		b.WriteString("\n")
	}
	b.WriteString("```\n")
	_, err := io.WriteString(w, b.String())
	return err
}
