package diff_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/diff"
	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/mesh/fault"
	"github.com/meshtrace/meshtrace/topology"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// faultEnv is one mesh the faults are injected into, one after the other.
type faultEnv struct {
	t    *testing.T
	name string
	st   *mesh.State
	dir  string
	n    int
}

// collect runs `meshtrace collect` of node0 into a new bundle.
func (e *faultEnv) collect(tag string) string {
	e.t.Helper()
	e.n++
	dir := filepath.Join(e.dir, fmt.Sprintf("%02d-%s", e.n, tag))
	if out, errs, code := meshtest.Run(e.t, "collect", "--mesh", e.name, "--node", "node0", dir); code != 0 {
		e.t.Fatalf("collect: exit %d\n%s%s", code, out, errs)
	}
	return dir
}

// diff runs `meshtrace diff -o json A B`.
func (e *faultEnv) diff(a, b string) (*diff.Result, int) {
	e.t.Helper()
	out, errs, code := meshtest.Run(e.t, "diff", "-o", "json", a, b)
	var r diff.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("diff %s %s: exit %d: %v\n%s%s", a, b, code, err, out, errs)
	}
	return &r, code
}

// netnsName is the bundle's name of a mesh namespace file of node0, ""
// for one outside node0 (the LAN, the client, another node).
func (e *faultEnv) netnsName(file string) string {
	switch {
	case file == e.st.Nodes[0].Host:
		return "host"
	case filepath.Dir(file) == filepath.Clean(e.st.Nodes[0].NetnsDir):
		return filepath.Base(file)
	}
	return ""
}

// taskNetns is the bundle's name of a task's namespace.
func (e *faultEnv) taskNetns(task string) string {
	for _, s := range e.st.Services {
		for _, x := range s.Tasks {
			if x.Name == task {
				return filepath.Base(x.Netns)
			}
		}
	}
	e.t.Fatalf("no task %s", task)
	return ""
}

// expectation is what one step of a fault must show in the diff: at
// least one change of a required kind in its namespace (matching check),
// and changes of the allowed kinds there are its own.
type expectation struct {
	step     string
	netns    string
	required []diff.Kind
	allowed  []diff.Kind
	check    func(diff.Change) bool
}

var ruleKinds = []diff.Kind{diff.RuleAdded, diff.RuleRemoved, diff.RuleMoved, diff.PolicyChanged, diff.ChainAdded, diff.ChainRemoved}

// expectations reads what a fault did from its recorded steps (what
// `mesh break -o json` prints): the diff must name exactly that.
func (e *faultEnv) expectations(f fault.Fault) []expectation {
	var out []expectation
	for _, s := range f.Steps {
		a := s.Do
		x := expectation{step: a.String(), netns: e.netnsName(a.Netns)}
		switch {
		case a.Rules != nil:
			x.required = ruleKinds
			// The iptables emulation of IPVS is rules: its services change with them.
			x.allowed = append(slices.Clone(ruleKinds), diff.IPVSChanged)
			lines := a.Rules.Lines
			x.check = func(c diff.Change) bool {
				if c.Table != a.Rules.Table {
					return false
				}
				for _, l := range lines {
					f := strings.Fields(l)
					if len(f) >= 2 && strings.TrimPrefix(f[1], ":") == c.Chain || strings.HasPrefix(l, ":"+c.Chain+" ") {
						return true
					}
				}
				return false
			}
		case a.Sysctl != nil:
			key := strings.ReplaceAll(a.Sysctl.Key, "/", ".")
			x.required = []diff.Kind{diff.SysctlChanged}
			x.check = func(c diff.Change) bool { return c.Object == key && c.After == a.Sysctl.Value }
		case a.Link != nil:
			x.required = []diff.Kind{diff.LinkChanged}
			x.check = func(c diff.Change) bool {
				return c.Object == a.Link.Name && (a.Link.MTU == 0 || c.Field == "mtu" && c.After == fmt.Sprint(a.Link.MTU))
			}
			if a.Link.MTU == 0 {
				x.required = nil // a GSO limit alone: the model has no GSO
				x.allowed = []diff.Kind{diff.LinkChanged}
			}
		case a.FDB != nil:
			x.required = []diff.Kind{diff.FDBChanged}
			x.check = func(c diff.Change) bool { return strings.Contains(c.Summary, a.FDB.MAC) }
		case a.Addr != nil:
			x.required = []diff.Kind{diff.LinkChanged}
			x.check = func(c diff.Change) bool {
				return c.Object == a.Addr.Dev && c.Field == "address" && (c.After == a.Addr.Prefix.String() || c.Before == a.Addr.Prefix.String())
			}
		case a.Route != nil:
			x.required = []diff.Kind{diff.RouteChanged}
			x.check = func(c diff.Change) bool { return c.Object == a.Route.Dst.String() }
		case a.Neigh != nil:
			if !a.Neigh.Forget { // forgetting a learned entry is the kernel's business
				x.required = []diff.Kind{diff.NeighChanged}
				x.check = func(c diff.Change) bool { return strings.Contains(c.Summary, a.Neigh.IP.String()) }
			}
		case a.Offload != nil, a.Program != nil:
			// checksum offload and tc programs: not in a bundle
		case a.IPVS != nil:
			x.required = []diff.Kind{diff.IPVSChanged}
		case a.Task != nil:
			x.netns = e.taskNetns(a.Task.Task)
			if a.Task.Mode == mesh.TaskStop {
				x.required = []diff.Kind{diff.SocketChanged}
				x.check = func(c diff.Change) bool { return c.Op == diff.Removed }
			}
		case a.Send != nil, a.Conntrack != nil:
			// traffic, and conntrack entries: not compared
		default:
			e.t.Fatalf("%s: step %s: the test does not know this kind of step", f.Kind, a)
		}
		if x.allowed == nil {
			x.allowed = x.required
		}
		if x.netns == "" {
			x.required = nil // outside node0: not in its bundle
		}
		out = append(out, x)
	}
	return out
}

// judge checks that the diff of a fault names every step and nothing
// else but what traffic changes.
func judge(r *diff.Result, xs []expectation) (problems []string) {
	for _, x := range xs {
		if len(x.required) == 0 {
			continue
		}
		found := false
		for _, c := range r.Changes {
			if c.Netns == x.netns && slices.Contains(x.required, c.Kind) && (x.check == nil || x.check(c)) {
				found = true
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("step %q: no %v change in %s", x.step, x.required, x.netns))
		}
	}
	for _, c := range r.Changes {
		if c.Auto {
			continue
		}
		own := false
		for _, x := range xs {
			own = own || c.Netns == x.netns && slices.Contains(x.allowed, c.Kind)
		}
		if !own {
			problems = append(problems, fmt.Sprintf("unrelated change: %s %s: %s", c.Netns, c.Kind, c.Summary))
		}
	}
	return problems
}

// TestDiffFaults injects every fault of `mesh break --list` the mesh
// supports, one after the other into one mesh, collects node0 before and
// after with the real binary, and checks that `meshtrace diff` names what
// the fault changed (read from its recorded steps: the rule, the policy,
// the sysctl, the MTU, the FDB entry, the real server, the listener) and
// nothing else beyond counters and what traffic learns; and that after the
// repair it finds nothing changed.
func TestDiffFaults(t *testing.T) {
	testutil.NeedRoot(t)
	start := time.Now()
	name := meshtest.Name(t)
	meshtest.Up(t, name, "--nodes", "2", "--service", "web:8080:80x2", "--service", "dns:5353:53/udpx2")
	st, err := mesh.Load("", name)
	if err != nil {
		t.Fatal(err)
	}
	e := &faultEnv{t: t, name: name, st: st, dir: t.TempDir()}
	before := e.collect("healthy")
	checkCounters(t, e, before)

	var lines []string
	injected := 0
	for _, k := range fault.Kinds() {
		if k.LB != "" && k.LB != st.LB {
			lines = append(lines, fmt.Sprintf("%-16s not injected: needs --lb %s", k.Name, k.LB))
			continue
		}
		out, errs, code := meshtest.Run(t, "mesh", "break", "--name", name, k.Name, "--node", "node0", "-o", "json")
		if code != 0 {
			t.Fatalf("mesh break %s: exit %d\n%s%s", k.Name, code, out, errs)
		}
		injected++
		var f fault.Fault
		if err := json.Unmarshal([]byte(out), &f); err != nil {
			t.Fatalf("mesh break -o json: %v\n%s", err, out)
		}
		broken := e.collect(k.Name)
		if _, errs, code := meshtest.Run(t, "mesh", "repair", "--name", name); code != 0 {
			t.Fatalf("mesh repair after %s: exit %d\n%s", k.Name, code, errs)
		}
		repaired := e.collect(k.Name + "-repaired")

		r, code := e.diff(before, broken)
		xs := e.expectations(f)
		problems := judge(r, xs)
		wantCode := diff.ExitChanged
		if r.Configuration() == 0 {
			wantCode = diff.ExitUnknown // mesh bundles carry no Docker tasks: not compared
		}
		if code != wantCode {
			problems = append(problems, fmt.Sprintf("exit %d, want %d", code, wantCode))
		}
		var named []string
		for _, c := range r.Changes {
			if !c.Auto {
				named = append(named, c.Netns+": "+c.Summary)
			}
		}
		if len(named) == 0 {
			named = []string{"nothing (the fault changes no state a bundle holds)"}
			for _, x := range xs {
				if len(x.required) > 0 {
					problems = append(problems, "diff names nothing")
					break
				}
			}
		}
		back, _ := e.diff(before, repaired)
		for _, c := range back.Changes {
			if !c.Auto {
				problems = append(problems, "after repair: "+c.Netns+": "+c.Summary)
			}
		}
		for _, p := range problems {
			t.Errorf("%s: %s", k.Name, p)
		}
		lines = append(lines, fmt.Sprintf("%-16s %3d auto, named: %s", k.Name, len(r.Changes)-r.Configuration(), strings.Join(named, "; ")))
		before = repaired
	}
	t.Logf("diff over %d faults in %s:\n%s", injected, time.Since(start).Round(100*time.Millisecond), strings.Join(lines, "\n"))
}

// checkCounters: every counter issue 17 names is in a collected bundle,
// and a datagram to a closed port of node0 moves UdpNoPorts and the ICMP
// destination-unreachable counters there, which diff reports.
func checkCounters(t *testing.T, e *faultEnv, healthy string) {
	t.Helper()
	m := load(t, healthy)
	for _, ns := range m.Namespaces {
		c := ns.Counters
		if c == nil {
			t.Errorf("netns %s: no counters collected", ns.Name)
			continue
		}
		// (The MIB's IpInNoRoutes is IpExtInNoRoutes in Linux: /proc/net/netstat.)
		for _, k := range []string{"IpInAddrErrors", "IpOutNoRoutes", "IpFragFails", "UdpNoPorts", "UdpInErrors",
			"UdpInCsumErrors", "TcpInCsumErrors", "TcpExtListenDrops", "TcpExtIPReversePathFilter", "IpExtInNoRoutes",
			"IcmpOutDestUnreachs", "IcmpOutTimeExcds"} {
			if _, ok := c.SNMP[k]; !ok {
				t.Errorf("netns %s: %s not collected", ns.Name, k)
			}
		}
		for _, k := range []string{"insert_failed", "drop", "early_drop", "invalid"} {
			if _, ok := c.Conntrack[k]; !ok {
				t.Errorf("netns %s: nf_conntrack %s not collected", ns.Name, k)
			}
		}
		for _, l := range ns.Links {
			for _, k := range []string{"rx_dropped", "tx_dropped", "rx_errors", "tx_errors", "rx_packets"} {
				if _, ok := c.Links[l.Name][k]; !ok {
					t.Errorf("netns %s: link %s: %s not collected", ns.Name, l.Name, k)
				}
			}
		}
		for _, tb := range ns.Firewall.Tables {
			for _, ch := range tb.Chains {
				for _, r := range ch.Rules {
					if !r.HasCounters {
						t.Errorf("netns %s: rule without counters: %s", ns.Name, r.Text)
					}
				}
			}
		}
		if ns.IPVS != nil && ns.IPVS.Available {
			for _, s := range ns.IPVS.Services {
				if s.Stats == nil {
					t.Errorf("netns %s: IPVS service without stats", ns.Name)
				}
			}
		}
	}

	// ICMP by type: IcmpMsgOutType3 appears once one was sent.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _ = probe.Do(ctx, probe.Request{Netns: e.st.Client.Netns, Proto: "udp", To: netip.AddrPortFrom(e.st.Nodes[0].IP, 9)})
	after := e.collect("closed-port")
	r, _ := e.diff(healthy, after)
	moved := map[string]int64{}
	for _, c := range r.Changes {
		if c.Netns == "host" && c.Kind == diff.CounterMoved {
			switch k := c.Counter.Kind; k {
			case topology.CounterSNMP:
				moved[c.Counter.Counter] = c.Counter.Delta
			case topology.CounterPolicy, topology.CounterRule:
				moved[string(k)+" "+c.Counter.Object] = c.Counter.Delta
			}
		}
		if !c.Auto {
			t.Errorf("a datagram to a closed port changed %s: %s", c.Netns, c.Summary)
		}
	}
	// The datagram is accepted by the host's INPUT policy after its nat
	// PREROUTING jump to DOCKER-INGRESS (no DNAT for port 9).
	for _, k := range []string{"UdpNoPorts", "IcmpOutDestUnreachs", "IcmpMsgOutType3", "policy filter INPUT", "rule nat PREROUTING #1"} {
		if moved[k] < 1 {
			t.Errorf("a datagram to node0's closed port 9: host %s did not move (%v)", k, moved)
		}
	}
	if l := load(t, after).Lookup("host"); l.Counters.SNMP["IcmpMsgOutType3"] < 1 {
		t.Errorf("IcmpMsgOutType3 not in the bundle after a port unreachable")
	}
}
