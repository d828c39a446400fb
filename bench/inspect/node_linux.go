package inspectbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/dockerns"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// ports gives every task 3 REDIRECTs, 3+3 accepts and 3+3 drops: 15 rules.
var ports = []dockerrules.Port{
	{Proto: "tcp", Published: 8080, Target: 80},
	{Proto: "tcp", Published: 8443, Target: 443},
	{Proto: "udp", Published: 5353, Target: 53},
}

// maxTasks is what one dockerns world holds (one /24 ingress network,
// one service).
const maxTasks = 220

// Node is a built node of n Docker-shaped namespaces: the host, an
// ingress sandbox, an ingress overlay and tasks (3 links, 15 rules each).
// dockerns builds one /24 ingress network per world, and a Linux bridge
// takes at most 1,024 ports, so above 223 namespaces the node is several
// worlds (like a node with several networks) whose namespace files are
// bind-mounted into one directory: the host of the first plays "host";
// the other worlds' hosts (each with its docker_gwbridge) and sandboxes
// are read as namespaces of that directory, so every veth peer is read.
type Node struct {
	Worlds []*dockerns.World
	Host   string
	Dirs   []string
	// base holds the combined directory (several worlds).
	base   string
	mounts []string
	// names are the `ip netns` names linked in /run/netns for the
	// operator loop (Link), host first.
	names, links []string
}

var seq atomic.Int64

// prefix is unique to this process and call; short, as link names are.
func prefix() string { return fmt.Sprintf("mb%d%d", os.Getpid()%100000, seq.Add(1)) }

// Build makes a node of n namespaces (at least 4).
func Build(n int) (nd *Node, err error) {
	if n < 4 {
		return nil, fmt.Errorf("inspect bench: a node of %d namespaces: want at least 4", n)
	}
	// one world: n = host + sandbox + overlay + tasks; k worlds:
	// n = 1 + (k-1) hosts + 2k + tasks.
	k := 1
	for n-3*k > k*maxTasks {
		k++
	}
	tasks := n - 3*k
	nd = &Node{}
	defer func() {
		if err != nil {
			err = errors.Join(err, nd.Close())
			nd = nil
		}
	}()
	for i := range k {
		t := tasks / k
		if i < tasks%k {
			t++
		}
		w, err := dockerns.Build(dockerns.Options{Prefix: prefix(), Tasks: t, Ports: ports})
		if err != nil {
			return nil, fmt.Errorf("build world %d of %d: %w", i+1, k, err)
		}
		nd.Worlds = append(nd.Worlds, w)
	}
	nd.Host = nd.Worlds[0].HostPath
	if k == 1 {
		nd.Dirs = []string{nd.Worlds[0].Dir}
		return nd, nil
	}
	if nd.base, err = os.MkdirTemp("", "meshtrace-bench-node-"); err != nil {
		return nil, err
	}
	dir := filepath.Join(nd.base, "netns")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	nd.Dirs = []string{dir}
	for i, w := range nd.Worlds {
		files := map[string]string{}
		for _, name := range w.Names() {
			switch {
			case name == "host" && i == 0:
			case name == "host":
				files["host_"+w.Prefix] = w.HostPath
			case name == w.Sandbox && i > 0:
				files["sbox_"+w.Prefix] = filepath.Join(w.Dir, name)
			default:
				files[name] = filepath.Join(w.Dir, name)
			}
		}
		for name, src := range files {
			dst := filepath.Join(dir, name)
			if err := os.WriteFile(dst, nil, 0o444); err != nil {
				return nil, err
			}
			if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
				return nil, fmt.Errorf("bind %s on %s: %w", src, dst, err)
			}
			nd.mounts = append(nd.mounts, dst)
		}
	}
	return nd, nil
}

// Namespaces is the number of namespaces a read of the node reads.
func (nd *Node) Namespaces() int {
	n := 1
	for _, w := range nd.Worlds {
		n += len(w.Tasks) + 2
	}
	return n + len(nd.Worlds) - 1
}

// Link names every namespace of a one-world node in /run/netns (`ip
// netns`), as operators do with `ln -s /run/docker/netns/* /run/netns/`;
// Close removes the links.
func (nd *Node) Link() error {
	if len(nd.Worlds) != 1 {
		return fmt.Errorf("inspect bench: the operator loop runs on a one-world node")
	}
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		return err
	}
	w := nd.Worlds[0]
	for _, name := range w.Names() {
		path := filepath.Join(w.Dir, name)
		if name == "host" {
			path = w.HostPath
		}
		link := w.Prefix + "-" + name
		if err := os.Symlink(path, filepath.Join("/run/netns", link)); err != nil {
			return err
		}
		nd.links = append(nd.links, filepath.Join("/run/netns", link))
		nd.names = append(nd.names, link)
	}
	return nil
}

// Close tears every world down and checks nothing is left.
func (nd *Node) Close() error {
	var errs []error
	for _, l := range nd.links {
		os.Remove(l)
	}
	nd.links = nil
	for _, m := range nd.mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	nd.mounts = nil
	if nd.base != "" {
		if err := os.RemoveAll(nd.base); err != nil {
			errs = append(errs, err)
		}
		nd.base = ""
	}
	for _, w := range nd.Worlds {
		if err := w.Close(); err != nil {
			errs = append(errs, err)
		}
		if left, _ := dockerns.Leftovers(w.Base); len(left) > 0 {
			errs = append(errs, fmt.Errorf("left behind: %v", left))
		}
	}
	nd.Worlds = nil
	return errors.Join(errs...)
}

// Cost is one timed run: wall time, and the CPU time of this process and
// of the processes it ran (which, unlike wall time, does not depend on
// what else the shared machine is doing).
type Cost struct{ Wall, CPU time.Duration }

func (c Cost) String() string {
	return fmt.Sprintf("%v (cpu %v)", c.Wall.Round(time.Millisecond), c.CPU.Round(time.Millisecond))
}

// Best keeps the faster (by wall time) of two costs.
func Best(x, y Cost) Cost {
	if x.Wall == 0 || y.Wall < x.Wall {
		return y
	}
	return x
}

func cpuTime() time.Duration {
	var self, kids unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &self)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &kids)
	d := func(tv unix.Timeval) time.Duration { return time.Duration(tv.Nano()) }
	return d(self.Utime) + d(self.Stime) + d(kids.Utime) + d(kids.Stime)
}

// Measure times f.
func Measure(f func() error) (Cost, error) {
	c0, w0 := cpuTime(), time.Now()
	err := f()
	return Cost{Wall: time.Since(w0), CPU: cpuTime() - c0}, err
}

func liveWorkers() int { return 4 * runtime.GOMAXPROCS(0) }

// Live reads the node with meshtrace's live reader as `meshtrace inspect`
// does (firewall auto: nf_tables in-process; conntrack on) and checks the
// read is complete.
func (nd *Node) Live(mode inspect.FirewallMode) (*topology.Model, Cost, error) {
	var m *topology.Model
	c, err := Measure(func() error {
		var err error
		m, err = inspect.Live(context.Background(), inspect.Options{HostNetns: nd.Host, NetnsDirs: nd.Dirs,
			Firewall: mode, Conntrack: true, Workers: liveWorkers()})
		return err
	})
	if err != nil {
		return nil, c, fmt.Errorf("live %s: %w", mode, err)
	}
	return m, c, nd.Check(m)
}

// Floor reads the node at the floor (see Floor).
func (nd *Node) Floor() (FloorStats, Cost, error) { return nd.floor(Floor) }

// FloorSharedProc reads the node at the floor through /proc/sys/net
// itself (see FloorSharedProc).
func (nd *Node) FloorSharedProc() (FloorStats, Cost, error) { return nd.floor(FloorSharedProc) }

func (nd *Node) floor(read func(string, []string, int) (FloorStats, error)) (FloorStats, Cost, error) {
	var st FloorStats
	c, err := Measure(func() error {
		var err error
		st, err = read(nd.Host, nd.Dirs, liveWorkers())
		return err
	})
	if err == nil && st.Namespaces != nd.Namespaces() {
		err = fmt.Errorf("floor read %d namespaces, want %d", st.Namespaces, nd.Namespaces())
	}
	return st, c, err
}

// Shell runs operator-loop.sh (at dir) over every namespace (Link first).
// Its exit status is ipvsadm's, which fails on a kernel without IPVS; the
// loop's own output is checked instead.
func (nd *Node) Shell(dir string) (Cost, error) {
	cmd := exec.Command("sh", filepath.Join(dir, "operator-loop.sh"))
	cmd.Args = append(cmd.Args, nd.names...)
	var out strings.Builder
	cmd.Stdout = &out
	c, err := Measure(cmd.Run)
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		return c, fmt.Errorf("operator loop: %w", err)
	}
	// every namespace but the overlay and the sandbox has a filter table
	if got, want := strings.Count(out.String(), "*filter"), nd.Namespaces()-2; got != want {
		return c, fmt.Errorf("operator loop printed %d filter tables, want %d", got, want)
	}
	return c, nil
}

// Check makes sure a read read everything: every namespace, without
// errors, a task's 3 links and 15 rules, its veth peers resolved.
func (nd *Node) Check(m *topology.Model) error {
	if len(m.Namespaces) != nd.Namespaces() {
		return fmt.Errorf("%d namespaces read, want %d", len(m.Namespaces), nd.Namespaces())
	}
	rules := 0
	for _, ns := range m.Namespaces {
		if len(ns.Errors) > 0 {
			return fmt.Errorf("netns %s: %q", ns.Name, ns.Errors)
		}
		rules += ns.Firewall.RuleCount()
	}
	tasks := 0
	for _, w := range nd.Worlds {
		tasks += len(w.Tasks)
		ts := w.Tasks
		task := m.Lookup(ts[len(ts)-1].Name)
		if task == nil {
			return fmt.Errorf("task %s not read", ts[len(ts)-1].Name)
		}
		if len(task.Links) != 3 || task.Firewall.RuleCount() != 15 {
			return fmt.Errorf("task %s: %d links, %d rules; want 3 and 15", task.Name, len(task.Links), task.Firewall.RuleCount())
		}
		for _, l := range task.Links {
			if l.Kind == "veth" && l.Peer.Netns == "" {
				return fmt.Errorf("task %s: %s peer unresolved", task.Name, l.Name)
			}
		}
	}
	if rules < 15*tasks {
		return fmt.Errorf("%d rules read, want at least %d", rules, 15*tasks)
	}
	return nil
}
