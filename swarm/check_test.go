package swarm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/bench/bundles"
	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/swarm"
	swarmload "github.com/meshtrace/meshtrace/swarm/load"
)

// The synthetic swarm of bench/bundles: 3 nodes (node00..node02), 8 tasks
// each, 4 published services (svc00..svc03, tcp/30000..30003) whose tasks
// run on every node; each node's fwmarks differ from the others'.
const (
	nNodes, nPer, nServices = 3, 8, 4
	overlay                 = "1-ingrs5x7w0"
)

var tmpl string

// swarmDir writes (once) the synthetic swarm and returns a fresh copy the
// test may edit.
func swarmDir(t *testing.T) string {
	t.Helper()
	if tmpl == "" {
		d, err := os.MkdirTemp("", "mt-swarm-tmpl-")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bundles.WriteSwarm(d, bundles.SwarmSpec{Nodes: nNodes, TasksPerNode: nPer, Services: nServices}); err != nil {
			t.Fatal(err)
		}
		tmpl = d
	}
	dir := filepath.Join(t.TempDir(), "swarm")
	if out, err := exec.Command("cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpl != "" {
		os.RemoveAll(tmpl)
	}
	os.Exit(code)
}

// load reads every node's bundle of dir through source.
func load(t *testing.T, dir string) []swarm.Node {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []swarm.Node
	for _, e := range ents {
		m, err := source.Load(context.Background(), source.Spec{Bundle: filepath.Join(dir, e.Name())})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, swarm.Node{Name: e.Name(), Model: m})
	}
	return nodes
}

// check is the swarm check of dir's nodes as `swarm check` reads them
// (load.CheckDir: what the check compares, not the rest), which must be the
// check of the nodes read whole.
func check(t *testing.T, dir string) *swarm.Report {
	t.Helper()
	var k swarm.Checker
	if err := swarmload.CheckDir(context.Background(), dir, k.Add); err != nil {
		t.Fatal(err)
	}
	r := k.Report()
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(swarm.Check(load(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("the check of the bundles read for it differs from the check of them read whole:\n%s\nwhole:\n%s", got, want)
	}
	return r
}

// edit rewrites one file of a node's bundle.
func edit(t *testing.T, dir, node, file string, f func(string) string) {
	t.Helper()
	p := filepath.Join(dir, node, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := f(string(b))
	if out == string(b) {
		t.Fatalf("%s/%s: the edit changed nothing", node, file)
	}
	if err := os.WriteFile(p, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dropLine removes the first line matching re.
func dropLine(re string) func(string) string {
	r := regexp.MustCompile("(?m)^" + re + ".*\n")
	return func(s string) string {
		loc := r.FindStringIndex(s)
		if loc == nil {
			return s
		}
		return s[:loc[0]] + s[loc[1]:]
	}
}

// firstMatch is the first submatch of re in a node's file.
func firstMatch(t *testing.T, dir, node, file, re string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, node, file))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)" + re).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("%s/%s: no match for %s", node, file, re)
	}
	return m[1]
}

func bad(r *swarm.Report) []swarm.Finding {
	var out []swarm.Finding
	for _, f := range r.Findings {
		if f.Severity == doctor.Error || f.Severity == doctor.Warning {
			out = append(out, f)
		}
	}
	return out
}

// wantOnly checks that the report is inconsistent, and that every finding
// above info is on node with the code.
func wantOnly(t *testing.T, r *swarm.Report, node string, code swarm.Code) {
	t.Helper()
	fs := bad(r)
	if r.Consistent || len(fs) == 0 {
		t.Fatalf("consistent %v, findings %+v: want %s on %s", r.Consistent, r.Findings, code, node)
	}
	for _, f := range fs {
		if f.Node != node || f.Code != code {
			t.Errorf("finding %s on %s (%s), want only %s on %s", f.Code, f.Node, f.Summary, code, node)
		}
	}
	for _, n := range r.Nodes {
		for ch, s := range n.Checks {
			if (s == "error" || s == "warning") != (n.Name == node && ch == checkOf(code)) {
				t.Errorf("matrix: %s %s = %s", n.Name, ch, s)
			}
		}
	}
	if r.Exit() != 1 {
		t.Errorf("exit %d, want 1", r.Exit())
	}
}

func checkOf(code swarm.Code) swarm.CheckName {
	return swarm.CheckName(strings.TrimSuffix(strings.TrimSuffix(string(code), "-diverge"), "-unpaired"))
}

func TestHealthySwarm(t *testing.T) {
	r := check(t, swarmDir(t))
	if !r.Consistent || len(bad(r)) > 0 {
		t.Fatalf("healthy swarm: consistent %v, findings %+v", r.Consistent, r.Findings)
	}
	if len(r.Nodes) != nNodes || len(r.Services) != nServices {
		t.Fatalf("%d nodes, services %v", len(r.Nodes), r.Services)
	}
	for _, n := range r.Nodes {
		for _, ch := range []swarm.CheckName{swarm.CheckBackends, swarm.CheckFDB, swarm.CheckPublished, swarm.CheckVNI, swarm.CheckMTU,
			swarm.CheckSubnet, swarm.CheckDataPort, swarm.CheckIPVS, swarm.CheckSysctl, swarm.CheckFirewall, swarm.CheckGossip} {
			if n.Checks[ch] != swarm.StatusOK {
				t.Errorf("%s %s: %s, want ok", n.Name, ch, n.Checks[ch])
			}
		}
		if n.Checks[swarm.CheckSPI] != swarm.StatusNA {
			t.Errorf("%s spi: %s, want n/a (no encrypted overlay)", n.Name, n.Checks[swarm.CheckSPI])
		}
	}
	if len(r.NotChecked) > 0 {
		t.Errorf("not checked: %+v", r.NotChecked)
	}
	if r.Exit() != 0 {
		t.Errorf("exit %d", r.Exit())
	}
}

// A node whose IPVS table holds a real server no task has (a stale
// backend), or lacks one of a running task, is named, and only it: the
// other nodes' tables are matched by service though their marks differ.
func TestStaleBackendNamed(t *testing.T) {
	dir := swarmDir(t)
	edit(t, dir, "node01", "netns/ingress_sbox/ipvsadm.txt", func(s string) string {
		mark := regexp.MustCompile(`-A -f (\d+)`).FindStringSubmatch(s)[1]
		return s + "-a -f " + mark + " -r 10.0.250.250:0 -m -w 1\n"
	})
	r := check(t, dir)
	wantOnly(t, r, "node01", swarm.CodeBackends)
	f := bad(r)[0]
	if f.Severity != doctor.Error || !strings.Contains(f.Evidence, "10.0.250.250") || f.Service == "" {
		t.Errorf("finding %+v", f)
	}
}

func TestMissingBackendNamed(t *testing.T) {
	dir := swarmDir(t)
	edit(t, dir, "node02", "netns/ingress_sbox/ipvsadm.txt", dropLine(`-a -f \d+ -r `))
	r := check(t, dir)
	wantOnly(t, r, "node02", swarm.CodeBackends)
	if f := bad(r)[0]; !strings.Contains(f.Evidence, "not real servers here") {
		t.Errorf("finding %+v", f)
	}
}

func TestNoFDBNamed(t *testing.T) {
	dir := swarmDir(t)
	edit(t, dir, "node00", "netns/"+overlay+"/bridge-fdb.txt", dropLine(`\S+ dev vxlan0 dst `))
	r := check(t, dir)
	wantOnly(t, r, "node00", swarm.CodeFDB)
	if f := bad(r)[0]; !strings.Contains(f.Evidence, "no FDB entry") {
		t.Errorf("finding %+v", f)
	}
}

func TestFDBWrongNodeNamed(t *testing.T) {
	dir := swarmDir(t)
	other := firstMatch(t, dir, "node02", "netns/host/ip-addr.txt", `inet (192\.168\.[0-9.]+)/`)
	edit(t, dir, "node00", "netns/"+overlay+"/bridge-fdb.txt", func(s string) string {
		r := regexp.MustCompile(`(?m)^(\S+ dev vxlan0 dst )(\S+)`)
		done := false
		return r.ReplaceAllStringFunc(s, func(l string) string {
			m := r.FindStringSubmatch(l)
			if done || m[2] == other {
				return l
			}
			done = true
			return m[1] + other
		})
	})
	r := check(t, dir)
	wantOnly(t, r, "node00", swarm.CodeFDB)
	if f := bad(r)[0]; !strings.Contains(f.Evidence, "FDB sends") || !strings.Contains(f.Evidence, "node02") {
		t.Errorf("finding %+v", f)
	}
}

func TestNoDNATNamed(t *testing.T) {
	dir := swarmDir(t)
	edit(t, dir, "node01", "netns/host/iptables-save.txt", dropLine(`\[0:0\] -A DOCKER-INGRESS -p tcp -m tcp --dport 30002 -j DNAT`))
	r := check(t, dir)
	wantOnly(t, r, "node01", swarm.CodePublished)
	if f := bad(r)[0]; f.Service != "svc02" || !strings.Contains(f.Evidence, "tcp/30002: the host does not DNAT it") {
		t.Errorf("finding %+v", f)
	}
}

func TestVNINamed(t *testing.T) {
	dir := swarmDir(t)
	edit(t, dir, "node02", "netns/"+overlay+"/ip-addr.txt", func(s string) string { return strings.Replace(s, "vxlan id 4096 ", "vxlan id 4097 ", 1) })
	wantOnly(t, check(t, dir), "node02", swarm.CodeVNI)
}

func TestGossipNamed(t *testing.T) {
	dir := swarmDir(t)
	other := firstMatch(t, dir, "node02", "netns/host/ip-addr.txt", `inet (192\.168\.[0-9.]+)/`)
	edit(t, dir, "node01", "docker/networks.json", func(s string) string {
		var nets []map[string]any
		if err := json.Unmarshal([]byte(s), &nets); err != nil {
			t.Fatal(err)
		}
		for _, n := range nets {
			peers, _ := n["Peers"].([]any)
			var keep []any
			for _, p := range peers {
				if p.(map[string]any)["IP"] != other {
					keep = append(keep, p)
				}
			}
			if peers != nil {
				n["Peers"] = keep
			}
		}
		b, err := json.Marshal(nets)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	})
	wantOnly(t, check(t, dir), "node01", swarm.CodeGossip)
}

// What was not collected is not checked, never a divergence.
func TestMissingDataNotChecked(t *testing.T) {
	dir := swarmDir(t)
	for _, f := range []string{"netns/ingress_sbox/ipvsadm.txt", "netns/" + overlay + "/bridge-fdb.txt", "netns/host/iptables-save.txt"} {
		if err := os.Remove(filepath.Join(dir, "node01", f)); err != nil {
			t.Fatal(err)
		}
	}
	r := check(t, dir)
	if !r.Consistent || len(bad(r)) > 0 {
		t.Fatalf("missing files: consistent %v, findings %+v", r.Consistent, r.Findings)
	}
	got := map[swarm.CheckName]bool{}
	for _, nc := range r.NotChecked {
		if nc.Node != "node01" {
			t.Errorf("not checked on %s: %+v", nc.Node, nc)
		}
		got[nc.Check] = true
	}
	for _, ch := range []swarm.CheckName{swarm.CheckBackends, swarm.CheckFDB, swarm.CheckPublished, swarm.CheckFirewall} {
		if !got[ch] {
			t.Errorf("node01 %s: not listed as not checked (%+v)", ch, r.NotChecked)
		}
	}
	if r.Exit() != 4 {
		t.Errorf("exit %d, want 4", r.Exit())
	}
}

// A node without Docker's metadata does not tell its tasks: a real server
// no known task has may be one of them, so it is not judged.
func TestNoDockerNotJudged(t *testing.T) {
	dir := swarmDir(t)
	if err := os.RemoveAll(filepath.Join(dir, "node02", "docker")); err != nil {
		t.Fatal(err)
	}
	r := check(t, dir)
	if !r.Consistent || len(bad(r)) > 0 {
		t.Fatalf("no docker on node02: consistent %v, findings %+v", r.Consistent, bad(r))
	}
}

// Without Docker's task list anywhere, a real server that one node's
// balancer has and every other node's lacks is that node out of step (a
// warning); the real servers all nodes share are not checked, never ok.
func TestNoDockerStaleAgainstOthers(t *testing.T) {
	dir := swarmDir(t)
	for i := range nNodes {
		if err := os.RemoveAll(filepath.Join(dir, fmt.Sprintf("node%02d", i), "docker")); err != nil {
			t.Fatal(err)
		}
	}
	r := check(t, dir)
	if !r.Consistent || len(bad(r)) > 0 {
		t.Fatalf("healthy, no docker: consistent %v, findings %+v", r.Consistent, bad(r))
	}
	for _, n := range r.Nodes {
		if n.Checks[swarm.CheckBackends] == swarm.StatusOK {
			t.Errorf("%s backends ok without the task list, want not checked", n.Name)
		}
	}
	edit(t, dir, "node01", "netns/ingress_sbox/ipvsadm.txt", func(s string) string {
		mark := regexp.MustCompile(`-A -f (\d+)`).FindStringSubmatch(s)[1]
		return s + "-a -f " + mark + " -r 10.0.250.250:0 -m -w 1\n"
	})
	r = check(t, dir)
	fs := bad(r)
	if r.Consistent || len(fs) != 1 || fs[0].Node != "node01" || fs[0].Code != swarm.CodeBackends || fs[0].Severity != doctor.Warning ||
		!strings.Contains(fs[0].Evidence, "only here: 10.0.250.250") {
		t.Fatalf("stale on node01, no docker: consistent %v, findings %+v", r.Consistent, fs)
	}
}

// The FDB check runs on several nodes at once: its notes and findings
// still come in node order, the same every time.
func TestFDBInNodeOrder(t *testing.T) {
	dir := swarmDir(t)
	for _, n := range []string{"node00", "node01", "node02"} {
		if err := os.Remove(filepath.Join(dir, n, "netns", overlay, "ip-neigh.txt")); err != nil {
			t.Fatal(err)
		}
	}
	nodes := load(t, dir)
	first, err := json.Marshal(swarm.Check(nodes))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		r := swarm.Check(nodes)
		var order []string
		for _, nc := range r.NotChecked {
			if nc.Check == swarm.CheckFDB {
				order = append(order, nc.Node)
			}
		}
		if strings.Join(order, " ") != "node00 node01 node02" {
			t.Fatalf("fdb not checked on %v, want node00 node01 node02 in order", order)
		}
		if again, _ := json.Marshal(r); string(again) != string(first) {
			t.Fatalf("the report changed between two checks of the same nodes:\n%s\n%s", first, again)
		}
	}
}
