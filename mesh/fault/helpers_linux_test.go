package fault_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/mesh/fault"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// fingerprint is everything of a mesh that a fault may change and repair
// must put back exactly, per namespace: the rules (no counters) of both
// iptables backends (of the legacy one its rules and non-ACCEPT
// policies: x_tables keeps a table once made), the links (MTU, GSO
// limit, state; no timers), their qdiscs, addresses and routes, the
// permanent neighbours, the VXLAN FDB entries with a destination, the
// forwarding and rp_filter sysctls, the listening sockets, and the TX
// checksum offload of the LAN's ports. Traffic-driven state (conntrack,
// learned FDB, learned neighbours) is left out.
type fingerprint map[string][]string

var ruleCounters = regexp.MustCompile(`\[\d+:\d+\]`)

// linkKeys are the `ip -d -o link` fields a fault may change; the rest
// (operational state, bridge timers) moves on its own.
var linkKeys = map[string]bool{"mtu": true, "master": true, "gso_max_segs": true, "gso_max_size": true, "vxlan": true, "id": true, "dstport": true}

// linkLine reduces an `ip -d -o link` line to name, flags and linkKeys.
func linkLine(l string) string {
	fs := strings.Fields(strings.ReplaceAll(l, "\\", " "))
	if len(fs) < 3 {
		return l
	}
	admin := "down" // the administrative state; carrier comes and goes
	for _, f := range strings.Split(strings.Trim(fs[2], "<>"), ",") {
		if f == "UP" {
			admin = "up"
		}
	}
	out := []string{fs[1], admin}
	for i := 3; i+1 < len(fs); i++ {
		if linkKeys[fs[i]] {
			out = append(out, fs[i]+" "+fs[i+1])
		}
	}
	return strings.Join(out, " ")
}

func takeFingerprint(t *testing.T, st *mesh.State) fingerprint {
	t.Helper()
	places := map[string]string{"client": st.Client.Netns, "lan": filepath.Join(st.Dir, "lan")}
	for _, n := range st.Nodes {
		places[n.Name] = n.Host
		ents, err := os.ReadDir(n.NetnsDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			places[n.Name+"/"+e.Name()] = filepath.Join(n.NetnsDir, e.Name())
		}
	}
	fp := fingerprint{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(places))
	for place, path := range places {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines, err := netnsFingerprint(path)
			if err != nil {
				errs <- fmt.Errorf("%s: %w", place, err)
				return
			}
			mu.Lock()
			fp[place] = lines
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	k, err := fault.NewKernel(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		on, err := k.NIC.TxChecksum(places["lan"], mesh.LANPort(n.Name))
		if err != nil {
			t.Fatal(err)
		}
		fp["lan"] = append(fp["lan"], fmt.Sprintf("tx-checksum %s %v", mesh.LANPort(n.Name), on))
	}
	return fp
}

func netnsFingerprint(path string) ([]string, error) {
	var out []string
	run := func(prefix string, keep func(string) bool, name string, args ...string) error {
		b, err := netnsx.Output(path, exec.Command(name, args...))
		if err != nil {
			return fmt.Errorf("%s %v: %w", name, args, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && keep(l) {
				out = append(out, prefix+l)
			}
		}
		return nil
	}
	if err := run("ipt ", func(l string) bool { return !strings.HasPrefix(l, "#") }, "iptables-save"); err != nil {
		return nil, err
	}
	n := len(out)
	for i := 0; i < n; i++ {
		out[i] = ruleCounters.ReplaceAllString(out[i], "[]")
	}
	if err := run("link ", func(string) bool { return true }, "ip", "-d", "-o", "link"); err != nil {
		return nil, err
	}
	for i := n; i < len(out); i++ {
		out[i] = "link " + linkLine(strings.TrimPrefix(out[i], "link "))
	}
	if err := run("fdb ", func(l string) bool { return strings.Contains(l, " dst ") }, "bridge", "fdb", "show"); err != nil {
		return nil, err
	}
	legacy := func(l string) bool {
		return strings.HasPrefix(l, "-A") || (strings.HasPrefix(l, ":") && !strings.Contains(l, " ACCEPT ") && !strings.Contains(l, " - "))
	}
	for _, c := range []struct {
		prefix string
		keep   func(string) bool
		args   []string
	}{
		{"legacy ", legacy, []string{"iptables-legacy-save"}},
		{"addr ", func(l string) bool { return strings.HasPrefix(l, "inet ") }, []string{"ip", "-4", "addr"}},
		{"route ", func(string) bool { return true }, []string{"ip", "-4", "route", "show", "table", "main"}},
		{"neigh ", func(string) bool { return true }, []string{"ip", "-4", "neigh", "show", "nud", "permanent"}},
		{"qdisc ", func(l string) bool { return !strings.Contains(l, "noqueue") }, []string{"tc", "qdisc", "show"}},
	} {
		if err := run(c.prefix, c.keep, c.args[0], c.args[1:]...); err != nil {
			return nil, err
		}
	}
	for i, l := range out {
		if strings.HasPrefix(l, "legacy ") {
			out[i] = ruleCounters.ReplaceAllString(l, "[]")
		}
	}
	err := netnsx.Do(path, func() error {
		for _, pat := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/*/forwarding", "net/ipv4/conf/*/rp_filter"} {
			files, _ := filepath.Glob("/proc/sys/" + pat)
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				out = append(out, "sysctl "+strings.TrimPrefix(f, "/proc/sys/")+"="+strings.TrimSpace(string(b)))
			}
		}
		// /proc/thread-self/net is this thread's namespace.
		for _, proto := range []string{"tcp", "udp"} {
			f, err := os.Open("/proc/thread-self/net/" + proto)
			if err != nil {
				return err
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fs := strings.Fields(sc.Text())
				if len(fs) > 3 && ((proto == "tcp" && fs[3] == "0A") || (proto == "udp" && fs[3] == "07")) {
					out = append(out, "listen "+proto+" "+fs[1])
				}
			}
			f.Close()
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// diffFingerprints lists what differs, per namespace.
func diffFingerprints(a, b fingerprint) []string {
	var out []string
	seen := map[string]bool{}
	for place := range a {
		seen[place] = true
	}
	for place := range b {
		seen[place] = true
	}
	var places []string
	for p := range seen {
		places = append(places, p)
	}
	sort.Strings(places)
	for _, p := range places {
		in := func(s []string) map[string]int {
			m := map[string]int{}
			for _, l := range s {
				m[l]++
			}
			return m
		}
		ma, mb := in(a[p]), in(b[p])
		for l, c := range ma {
			if mb[l] < c {
				out = append(out, fmt.Sprintf("%s: - %s", p, l))
			}
		}
		for l, c := range mb {
			if ma[l] < c {
				out = append(out, fmt.Sprintf("%s: + %s", p, l))
			}
		}
	}
	sort.Strings(out)
	return out
}

// outcome is one request's fate.
type outcome struct {
	task string // who answered
	kind string // ok, refused, timeout, error
	err  error
}

func (o outcome) String() string {
	if o.kind == "ok" {
		return o.task
	}
	return o.kind
}

// ask makes n requests at once from the client to addr (new connections,
// new source ports) and returns what became of each.
func ask(st *mesh.State, n int, proto string, addr netip.AddrPort, path string, timeout time.Duration) []outcome {
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			r, err := mesh.Ask(ctx, st.Client.Netns, proto, addr.String(), path)
			out[i] = classify(r.Task, err)
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func classify(task string, err error) outcome {
	var to interface{ Timeout() bool }
	switch {
	case err == nil:
		return outcome{task: task, kind: "ok"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return outcome{kind: "refused", err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &to) && to.Timeout():
		return outcome{kind: "timeout", err: err}
	}
	return outcome{kind: "error", err: err}
}

// expectMix checks that exactly fails of outs failed, each with kind
// failKind, and that every answer came from one of the allowed tasks.
func expectMix(outs []outcome, fails int, failKind string, allowed ...string) error {
	n := 0
	for _, o := range outs {
		switch {
		case o.kind != "ok" && o.kind != failKind:
			return fmt.Errorf("want %d×%s, got %v (%v)", fails, failKind, outs, o.err)
		case o.kind != "ok":
			n++
		case !contains(allowed, o.task):
			return fmt.Errorf("answered by %s, want only %v: %v", o.task, allowed, outs)
		}
	}
	if n != fails {
		return fmt.Errorf("%d of %d failed (%v), want %d×%s", n, len(outs), outs, fails, failKind)
	}
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// summary counts outcomes: "refused×2", "timeout×1 web.2×1".
func summary(outs []outcome) string {
	n := map[string]int{}
	var order []string
	for _, o := range outs {
		if n[o.String()] == 0 {
			order = append(order, o.String())
		}
		n[o.String()]++
	}
	var s []string
	for _, k := range order {
		s = append(s, fmt.Sprintf("%s×%d", k, n[k]))
	}
	return strings.Join(s, " ")
}
