package bundles

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meshtrace/meshtrace/bench/proc"
	"github.com/meshtrace/meshtrace/bench/report"
)

// Targets of issue 15.
const (
	BigSize        = 200 << 20
	TargetBigRSSMB = 400.0
)

// Options tune the bundle measures.
type Options struct {
	Bin  string // the meshtrace binary
	Root string // the repository (fixtures/bundles/modern is the base)
	Dir  string // scratch directory
	// Logf gets progress lines (nil: none).
	Logf func(format string, a ...any)
	// Profile, when set, profiles meshtrace's in-process read of the
	// bundle dir under name.
	Profile func(name, dir string) error
	// ProfileSwarm, when set, profiles meshtrace's in-process swarm check
	// of the swarm dir (its node bundles) under name.
	ProfileSwarm func(name, dir string) error
}

func (o *Options) logf(format string, a ...any) {
	if o.Logf != nil {
		o.Logf(format, a...)
	}
}

// head keeps the first 64 KiB written to it and counts the rest.
type head struct {
	b []byte
	n int64
}

func (h *head) Write(p []byte) (int, error) {
	if room := 64<<10 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	h.n += int64(len(p))
	return len(p), nil
}

// InspectFrom runs `bin inspect --from dir` and returns its usage and the
// beginning of its text output.
func InspectFrom(bin, dir string) (proc.Usage, string, error) {
	var h head
	cmd := exec.Command(bin, "inspect", "--from", dir)
	cmd.Stdout = &h
	u, err := proc.Check(cmd)
	u.Out = h.n
	return u, string(h.b), err
}

var firewallLine = regexp.MustCompile(`(?m)^host .*\n(?:  .*\n)*?  firewall: [^,]+, (\d+) rules`)

// BigLine writes the 200 MB bundle and measures `meshtrace inspect
// --from` over it: peak RSS (wait4), time, and the floor of reading the
// file.
func BigLine(o Options) (report.Line, error) {
	l := report.Line{Name: "bundle-200MB"}
	dir := filepath.Join(o.Dir, "big-bundle")
	defer os.RemoveAll(dir)
	b, err := WriteBig(filepath.Join(o.Root, "fixtures/bundles/modern"), dir, BigSize)
	if err != nil {
		return l, err
	}
	o.logf("bundle %s: host iptables-save %d MB, %d rules", dir, b.Size>>20, b.Rules)
	floor, err := readFloor(b.File)
	if err != nil {
		return l, err
	}
	u, out, err := InspectFrom(o.Bin, dir)
	if err != nil {
		return l, err
	}
	o.logf("meshtrace inspect --from: %v wall, %v cpu, %.0f MB rss", u.Wall.Round(time.Millisecond), u.CPU.Round(time.Millisecond), u.RSSMB())
	m := firewallLine.FindStringSubmatch(out)
	if m == nil {
		return l, fmt.Errorf("inspect --from %s: no host firewall line in its output:\n%.600s", dir, out)
	}
	if n, _ := strconv.Atoi(m[1]); n != b.Rules {
		return l, fmt.Errorf("inspect --from %s: host has %d rules, the bundle %d", dir, n, b.Rules)
	}
	rss := u.RSSMB()
	l.Set("rss_mb", rss)
	l.Set("seconds", u.Wall.Seconds())
	l.Set("cpu_s", u.CPU.Seconds())
	l.Set("rss_per_file_mb", rss/(float64(b.Size)/(1<<20)))
	l.Set("rules", b.Rules)
	l.Set("file_mb", b.Size>>20)
	l.Set("mrules_per_s", float64(b.Rules)/u.Wall.Seconds()/1e6)
	l.Set("read_floor_ms", float64(floor)/float64(time.Millisecond))
	l.Met(fmt.Sprintf("rss_mb<=%g", TargetBigRSSMB), rss <= TargetBigRSSMB)
	if o.Profile != nil {
		if err := o.Profile("bundle-200MB", dir); err != nil {
			return l, err
		}
	}
	return l, nil
}

// readFloor is the best of 3 sequential reads of file through a 1 MiB
// buffer: what reading the text costs before any parsing.
func readFloor(file string) (time.Duration, error) {
	var best time.Duration
	buf := make([]byte, 1<<20)
	for range 3 {
		f, err := os.Open(file)
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		_, err = io.CopyBuffer(io.Discard, bufio.NewReaderSize(f, 1<<20), buf)
		d := time.Since(t0)
		f.Close()
		if err != nil {
			return 0, err
		}
		if best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// Swarm sizes and target of issue 14/15.
const (
	SwarmNodes       = 50
	SwarmTasks       = 100
	TargetSwarmCheck = 1000.0 // ms
)

// HasSwarmCheck reports whether bin has `swarm check` (issue 14).
func HasSwarmCheck(bin string) bool {
	out, err := exec.Command(bin, "swarm", "check", "--help").CombinedOutput()
	return err == nil && strings.Contains(string(out), "check")
}

// swarmRounds is how many times `swarm check` is timed (the best counts).
const swarmRounds = 3

// SwarmLine writes 50 node bundles of 100 tasks each and times `meshtrace
// swarm check --from DIR -o json` over them, the best of three runs
// (status=not-built when the binary has no such command); the check must
// find the healthy synthetic swarm consistent and list every node. As a
// reference of what reading a bundle costs on its own, it also times
// `meshtrace inspect --from` over every fifth node's bundle, one after the
// other (inspect_from_ms is that time per node times 50).
func SwarmLine(o Options) (report.Line, error) {
	l := report.Line{Name: "swarm-check-50"}
	dir := filepath.Join(o.Dir, "swarm")
	defer os.RemoveAll(dir)
	t0 := time.Now()
	nodes, err := WriteSwarm(dir, SwarmSpec{Nodes: SwarmNodes, TasksPerNode: SwarmTasks})
	if err != nil {
		return l, err
	}
	gen := time.Since(t0)
	size, err := dirSize(dir)
	if err != nil {
		return l, err
	}
	o.logf("swarm %s: %d node bundles of %d tasks, %d MB, written in %v", dir, len(nodes), SwarmTasks, size>>20, gen.Round(time.Millisecond))
	if HasSwarmCheck(o.Bin) {
		best, rss, err := timeSwarmCheck(o, dir, SwarmNodes)
		if err != nil {
			return l, err
		}
		msv := ms(best.Wall)
		l.Set("ms", msv)
		l.Set("cpu_ms", ms(best.CPU))
		l.Set("rss_mb", rss)
		l.Set("consistent", true)
		l.Set("rounds", swarmRounds)
		l.Met(fmt.Sprintf("ms<=%g", TargetSwarmCheck), msv <= TargetSwarmCheck)
		if err := swarmGrowth(o, &l, best, size); err != nil {
			return l, err
		}
		if o.ProfileSwarm != nil {
			if err := o.ProfileSwarm("swarm-check-50", dir); err != nil {
				return l, err
			}
		}
	} else {
		l.Set("status", "not-built")
		l.Set("target", fmt.Sprintf("ms<=%g", TargetSwarmCheck))
	}
	var total time.Duration
	var rss float64
	sample := 0
	for i := 0; i < len(nodes); i += 5 {
		sample++
		u, _, err := InspectFrom(o.Bin, nodes[i])
		if err != nil {
			return l, err
		}
		total += u.Wall
		rss = max(rss, u.RSSMB())
	}
	perNode := float64(total) / float64(time.Millisecond) / float64(sample)
	o.logf("meshtrace inspect --from, %d nodes: %v in all, peak %.0f MB", sample, total.Round(time.Millisecond), rss)
	if o.Profile != nil {
		if err := o.Profile("swarm-node", nodes[0]); err != nil {
			return l, err
		}
	}
	l.Set("inspect_from_ms", perNode*float64(len(nodes)))
	l.Set("inspect_from_ms_per_node", perNode)
	l.Set("inspect_from_sampled", sample)
	l.Set("inspect_from_rss_mb", rss)
	l.Set("nodes", len(nodes))
	l.Set("tasks", SwarmNodes*SwarmTasks)
	l.Set("bundles_mb", size>>20)
	l.Set("gen_s", gen.Seconds())
	return l, nil
}

// swarmSmaller are the smaller swarms swarm-check-50 is compared with, to
// show how its cost grows.
var swarmSmaller = []int{10, 25}

// swarmGrowth times `swarm check` over swarms of 10 and 25 nodes (100
// tasks each, 20 services) as over the 50 (at50, its best run; size50, its
// bundles' bytes) and sets, for each, ms_N, cpu_ms_N and mb_N, and
// per_node_growth: the time per node at 50 over that at 10. A node's bundle
// holds cluster-wide state (its load balancer's real servers and its
// overlay's entries are every task of the swarm), so it grows with the
// swarm: per_mb_growth is the time per byte read at 50 over that at 10, 1
// when the cost is linear in what the nodes hold (nodes x tasks). The _cpu
// variants are CPU time, less moved by a loaded machine.
func swarmGrowth(o Options, l *report.Line, at50 proc.Usage, size50 int64) error {
	type point struct {
		nodes int
		u     proc.Usage
		size  int64
	}
	pts := []point{}
	for _, n := range swarmSmaller {
		dir := filepath.Join(o.Dir, fmt.Sprintf("swarm%d", n))
		if _, err := WriteSwarm(dir, SwarmSpec{Nodes: n, TasksPerNode: SwarmTasks}); err != nil {
			return err
		}
		size, err := dirSize(dir)
		if err == nil {
			var u proc.Usage
			if u, _, err = timeSwarmCheck(o, dir, n); err == nil {
				pts = append(pts, point{n, u, size})
				l.Set(fmt.Sprintf("ms_%d", n), ms(u.Wall))
				l.Set(fmt.Sprintf("cpu_ms_%d", n), ms(u.CPU))
				l.Set(fmt.Sprintf("mb_%d", n), float64(size)/(1<<20))
			}
		}
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
	}
	p10, p50 := pts[0], point{SwarmNodes, at50, size50}
	perNode := func(d time.Duration, p point) float64 { return float64(d) / float64(p.nodes) }
	perByte := func(d time.Duration, p point) float64 { return float64(d) / float64(p.size) }
	l.Set("per_node_growth", perNode(p50.u.Wall, p50)/perNode(p10.u.Wall, p10))
	l.Set("per_node_growth_cpu", perNode(p50.u.CPU, p50)/perNode(p10.u.CPU, p10))
	l.Set("per_mb_growth", perByte(p50.u.Wall, p50)/perByte(p10.u.Wall, p10))
	l.Set("per_mb_growth_cpu", perByte(p50.u.CPU, p50)/perByte(p10.u.CPU, p10))
	l.Set("mb_per_node_growth", (float64(p50.size)/float64(p50.nodes))/(float64(p10.size)/float64(p10.nodes)))
	return nil
}

// timeSwarmCheck runs `meshtrace swarm check --from dir -o json` over a
// healthy synthetic swarm of nodes nodes swarmRounds times: its best run
// (wall time) and the largest peak RSS. The check must find it consistent
// and list every node.
func timeSwarmCheck(o Options, dir string, nodes int) (proc.Usage, float64, error) {
	var best proc.Usage
	var rss float64
	for round := range swarmRounds {
		var out head
		cmd := exec.Command(o.Bin, "swarm", "check", "--from", dir, "-o", "json")
		cmd.Stdout = &out
		u, err := proc.Check(cmd)
		if err != nil {
			return best, 0, err
		}
		var res struct {
			Consistent bool              `json:"consistent"`
			Nodes      []json.RawMessage `json:"nodes"`
		}
		if err := json.Unmarshal(out.b, &res); err != nil || len(res.Nodes) != nodes {
			return best, 0, fmt.Errorf("swarm check --from %s: %d nodes in its JSON, want %d (%v)", dir, len(res.Nodes), nodes, err)
		}
		if !res.Consistent {
			return best, 0, fmt.Errorf("swarm check --from %s: the healthy synthetic swarm is not consistent:\n%.2000s", dir, out.b)
		}
		o.logf("meshtrace swarm check --from (%d nodes), round %d: %v wall, %v cpu, %.0f MB rss", nodes, round+1, u.Wall.Round(time.Millisecond), u.CPU.Round(time.Millisecond), u.RSSMB())
		if round == 0 || u.Wall < best.Wall {
			best = u
		}
		rss = max(rss, u.RSSMB())
	}
	return best, rss, nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}
