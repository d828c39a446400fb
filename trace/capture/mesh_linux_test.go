package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/trace"
)

// The mesh tests run the meshtrace binary end to end: mesh up, trace,
// replay, mesh down.

func TestMain(m *testing.M) { testutil.Main(m) }

// run runs meshtrace and returns stdout and the exit code.
func run(t *testing.T, args ...string) ([]byte, int) {
	t.Helper()
	cmd := exec.Command(testutil.Meshtrace(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("meshtrace %s: %v", strings.Join(args, " "), err)
	}
	if stderr.Len() > 0 {
		t.Logf("meshtrace %s: stderr: %s", strings.Join(args, " "), stderr.String())
	}
	return out, code
}

type meshState struct {
	Nodes []struct {
		Name string `json:"name"`
		IP   string `json:"ip"`
	} `json:"nodes"`
	Services []struct {
		Name  string `json:"name"`
		Tasks []struct {
			Name  string `json:"name"`
			Node  string `json:"node"`
			IP    string `json:"ip"`
			Netns string `json:"netns"`
		} `json:"tasks"`
	} `json:"services"`
}

// meshUp builds a mesh with a unique name and removes it after the test.
func meshUp(t *testing.T, services ...string) (string, *meshState) {
	t.Helper()
	testutil.NeedRoot(t)
	name := fmt.Sprintf("tr%d-%s", os.Getpid()%100000, strings.ToLower(strings.ReplaceAll(testutil.Prefix(), "mt", "")))
	args := []string{"mesh", "up", "--name", name, "--nodes", "2", "--lb", "iptables"}
	for _, s := range services {
		args = append(args, "--service", s)
	}
	t.Cleanup(func() {
		if out, code := run(t, "mesh", "down", "--name", name); code != 0 {
			t.Errorf("mesh down %s: exit %d: %s", name, code, out)
		}
	})
	if out, code := run(t, args...); code != 0 {
		t.Fatalf("mesh up: exit %d: %s", code, out)
	}
	out, code := run(t, "mesh", "status", "--name", name, "-o", "json")
	if code != 0 {
		t.Fatalf("mesh status: exit %d", code)
	}
	var st meshState
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("mesh status: %v\n%s", err, out)
	}
	return name, &st
}

func traceJSON(t *testing.T, wantCode int, args ...string) *trace.Result {
	t.Helper()
	out, code := run(t, append(args, "-o", "json")...)
	if code != wantCode {
		t.Errorf("meshtrace %s: exit %d, want %d", strings.Join(args, " "), code, wantCode)
	}
	var r trace.Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("meshtrace %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	dumpResult(t, &r)
	return &r
}

// checkRemote checks a flow served on node1: it crossed VXLAN, seen on
// both nodes' uplinks encapsulated, and reached node1's task.
func checkRemote(t *testing.T, f trace.Flow) {
	t.Helper()
	var encap, node1 bool
	for _, h := range f.Hops {
		if h.Node == "node1" && h.Netns == "host" && strings.HasPrefix(h.Encap, "vxlan 192.168.77.10:") && strings.Contains(h.Encap, "192.168.77.11:4789 vni 4096") {
			encap = true
		}
		if h.Node == "node1" && h.Netns == *f.Backend.Netns && h.Dir == "in" {
			node1 = true
		}
	}
	if !encap || !node1 {
		t.Errorf("flow %d: encapsulated on node1's uplink %v, reached node1's task %v", f.ID, encap, node1)
	}
	for _, k := range []string{"vxlan-encap", "vxlan-decap"} {
		if rewriteOf(f, k) == nil {
			t.Errorf("flow %d: no %s", f.ID, k)
		}
	}
}

func TestMeshTraceTCP(t *testing.T) {
	name, _ := meshUp(t, "web:8080:80x2")
	pcap := filepath.Join(t.TempDir(), "mesh.pcapng")
	res := traceJSON(t, 0, "trace", "--mesh", name, "--node", "node0", "--port", "8080", "--probe", "--count", "4", "--pcap", pcap)
	if len(res.Flows) != 4 {
		t.Fatalf("%d flows, want 4", len(res.Flows))
	}
	nodes := map[string]int{}
	for _, f := range res.Flows {
		checkMeshFlow(t, f, 8080, 80, "conntrack")
		if f.Backend == nil {
			continue
		}
		nodes[f.Backend.Node]++
		if f.Backend.Node == "node1" {
			checkRemote(t, f)
			if len(f.Hops) != 13 {
				t.Errorf("flow %d: %d hops, want 13", f.ID, len(f.Hops))
			}
		} else if len(f.Hops) != 9 {
			t.Errorf("flow %d: %d hops, want 9", f.ID, len(f.Hops))
		}
	}
	if nodes["node0"] != 2 || nodes["node1"] != 2 {
		t.Errorf("backends per node %v: round robin should give 2 and 2", nodes)
	}
	for _, p := range res.Probes {
		if !strings.HasPrefix(p.Answer, "web.") {
			t.Errorf("probe %+v", p)
		}
	}
	b, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	checkReplay(t, res, b)
	// With the mesh as source, the replay explains the rewrites again.
	rep := traceJSON(t, 0, "replay", pcap, "--mesh", name)
	for _, f := range rep.Flows {
		checkMeshFlow(t, f, 8080, 80, "model")
	}
}

func TestMeshTraceUDP(t *testing.T) {
	name, _ := meshUp(t, "dns:5353:53/udpx2")
	res := traceJSON(t, 0, "trace", "--mesh", name, "--port", "5353", "--proto", "udp", "--probe", "--count", "2")
	if len(res.Flows) != 2 {
		t.Fatalf("%d flows, want 2", len(res.Flows))
	}
	nodes := map[string]bool{}
	for _, f := range res.Flows {
		if f.Proto != "udp" {
			t.Errorf("flow %d: proto %s", f.ID, f.Proto)
		}
		checkMeshFlow(t, f, 5353, 53, "conntrack")
		if f.Backend != nil {
			nodes[f.Backend.Node] = true
			if f.Backend.Node == "node1" {
				checkRemote(t, f)
			}
		}
	}
	if !nodes["node0"] || !nodes["node1"] {
		t.Errorf("backends on %v, want both nodes", nodes)
	}
}

func TestMeshTcpdumpAny(t *testing.T) {
	name, st := meshUp(t, "web:8080:80x2")
	var netns, task string
	for _, tk := range st.Services[0].Tasks {
		if tk.Node == "node1" {
			netns, task = tk.Netns, filepath.Base(tk.Netns)
		}
	}
	if netns == "" {
		t.Fatal("no task on node1")
	}
	file := filepath.Join(t.TempDir(), "any.pcap")
	stop := tcpdump(t, netns, file, "-i", "any", "tcp")
	run(t, "trace", "--mesh", name, "--port", "8080", "--probe", "--count", "2")
	waitQuiet(file)
	stop()
	res := traceJSON(t, 0, "replay", file, "--mesh", name)
	if len(res.Flows) != 1 {
		t.Fatalf("%d flows, want the one node1's task served", len(res.Flows))
	}
	f := res.Flows[0]
	if f.Backend == nil || f.Backend.Netns == nil || *f.Backend.Netns != task || f.Backend.Node != "node1" {
		t.Errorf("backend %+v, want %s on node1", f.Backend, task)
	}
	if len(f.Hops) != 1 || f.Hops[0].Netns != task || f.Hops[0].Ifname != "eth0" || f.Hops[0].Dir != "in" {
		t.Errorf("hops %+v, want one: in on %s/eth0", f.Hops, task)
	}
	if r := rewriteOf(f, "redirect"); r == nil || r.ToPort != 80 || r.Seen != "model" {
		t.Errorf("redirect %+v, want the task's REDIRECT from the model", r)
	}
}

func TestMeshBrokenPath(t *testing.T) {
	name, st := meshUp(t, "web:8080:80x2")
	var netns, task string
	for _, tk := range st.Services[0].Tasks {
		if tk.Node == "node0" {
			netns, task = tk.Netns, filepath.Base(tk.Netns)
		}
	}
	// Drop the task's REDIRECT: its ingress filter now drops the
	// published port.
	if out, err := exec.Command("nsenter", "--net="+netns, "iptables", "-w", "-t", "nat", "-F", "PREROUTING").CombinedOutput(); err != nil {
		t.Fatalf("iptables in %s: %v %s", netns, err, out)
	}
	res := traceJSON(t, 3, "trace", "--mesh", name, "--port", "8080", "--probe", "--count", "2", "--timeout", "20s")
	var broken, fine int
	for _, f := range res.Flows {
		if f.Answered {
			fine++
			continue
		}
		broken++
		s := f.Stop
		if s == nil || s.Node != "node0" || s.Netns != task || s.Ifname != "eth0" || s.Dir != "in" {
			t.Errorf("flow %d: stop %+v, want the SYN entering %s/eth0 on node0", f.ID, s, task)
			continue
		}
		all := strings.Join(s.Expected, "\n")
		if !strings.Contains(all, "filter INPUT") || !strings.Contains(all, "has no REDIRECT, while backend") {
			t.Errorf("flow %d: expected %q: want the drop and the REDIRECT the other task has", f.ID, all)
		}
	}
	if broken != 1 || fine != 1 {
		t.Errorf("%d broken and %d answered flows, want 1 and 1", broken, fine)
	}
}

// A probe from the node itself (like curl 127.0.0.1:8080 on a Swarm node)
// is DNATed in the host's nat OUTPUT and MASQUERADEd before the first
// capture point: the trace recovers both from the host's conntrack entry
// and reports the original client and destination.
func TestMeshTraceFromNode(t *testing.T) {
	name, st := meshUp(t, "web:8080:80x2")
	r := traceJSON(t, 0, "trace", "--mesh", name, "--node", "node0", "--port", "8080", "--probe", "--probe-from", "node", "--count", "1", "--timeout", "20s")
	if len(r.Flows) != 1 {
		t.Fatalf("%d flows", len(r.Flows))
	}
	f := r.Flows[0]
	node := st.Nodes[0].IP
	if !strings.HasPrefix(f.Client, node+":") || f.Server != node+":8080" || !f.Complete {
		t.Fatalf("flow client %s server %s complete %v, want the node %s as both", f.Client, f.Server, f.Complete, node)
	}
	d := rewriteOf(f, "dnat")
	if d == nil || d.Netns != "host" || d.From != node+":8080" || !strings.HasSuffix(d.To, ":8080") || d.Seen != "conntrack" || !strings.Contains(d.Rule, "DOCKER-INGRESS") {
		t.Fatalf("dnat rewrite %+v", d)
	}
	if m := rewriteOf(f, "masquerade"); m == nil || m.From != f.Client || !strings.Contains(m.Rule, "MASQUERADE") {
		t.Fatalf("masquerade rewrite %+v", m)
	}
	if rw := f.Rewrites[0]; rw.Kind != "dnat" {
		t.Errorf("the unseen dnat must come first, got %+v", rw)
	}
}
