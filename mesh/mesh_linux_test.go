package mesh_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
)

// TestRoutingMesh is the mesh's reason to exist: every node answers on
// every published port, balancing round robin over every task, local or on
// the other node through VXLAN, for TCP and UDP, from the nodes themselves
// and from a client on the LAN; and `down` leaves the machine as it was.
func TestRoutingMesh(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshtest.Name(t)
	before := takeSnapshot(t, name)
	meshtest.Up(t, name, "--nodes", "2", "--service", "web:8080:80x3", "--service", "dns:5353:53/udpx2", "--lb", "iptables")

	st, code := statusJSON(t, name)
	if code != 0 || st.Health == nil || !st.Health.Healthy || !st.Health.AgentAlive {
		t.Fatalf("mesh status: exit %d, health %+v", code, st.Health)
	}
	if st.Name != name || st.LB != "iptables" || st.AgentPID <= 0 || len(st.Nodes) != 2 || len(st.Services) != 2 {
		t.Fatalf("status: %+v", st)
	}
	if n := st.Nodes[1]; n.Name != "node1" || n.IP.String() != "192.168.77.11" {
		t.Errorf("node1 = %+v", n)
	}
	web, dns := st.Services[0], st.Services[1]
	if web.Name != "web" || web.Proto != "tcp" || web.Published != 8080 || web.Target != 80 || len(web.Tasks) != 3 ||
		dns.Name != "dns" || dns.Proto != "udp" || dns.Published != 5353 || dns.Target != 53 || len(dns.Tasks) != 2 {
		t.Fatalf("services: %+v", st.Services)
	}
	for _, task := range append(web.Tasks, dns.Tasks...) {
		if task.Answering == nil || !*task.Answering {
			t.Errorf("task %s not answering", task.Name)
		}
	}

	// 20 requests per source and destination, each a new connection.
	sources := map[string][]string{
		"node0":  {"127.0.0.1", "192.168.77.10", "192.168.77.11"},
		"node1":  {"127.0.0.1", "192.168.77.11"},
		"client": {"192.168.77.10", "192.168.77.11"},
	}
	for from, dsts := range sources {
		path, err := st.NetnsPath(from)
		if err != nil {
			t.Fatal(err)
		}
		for _, dst := range dsts {
			for _, svc := range st.Services {
				var want []string
				for _, task := range svc.Tasks {
					want = append(want, task.Name)
				}
				got := map[string]int{}
				for i := range 20 {
					addr := fmt.Sprintf("%s:%d", dst, svc.Published)
					r, err := mesh.Ask(context.Background(), path, svc.Proto, addr, "")
					if err != nil {
						t.Fatalf("%s -> %s/%s request %d: %v", from, svc.Proto, addr, i, err)
					}
					got[r.Task]++
				}
				var names []string
				for n, c := range got {
					names = append(names, n)
					// Round robin: an even spread, not just "every task once".
					if lo := 20 / len(want); c < lo || c > lo+1 {
						t.Errorf("%s -> %s %s:%d: %s answered %d of 20 (%v), not round robin", from, svc.Proto, dst, svc.Published, n, c, got)
					}
				}
				sort.Strings(names)
				sort.Strings(want)
				if strings.Join(names, ",") != strings.Join(want, ",") {
					t.Errorf("%s -> %s %s:%d reached %v, want every task %v", from, svc.Proto, dst, svc.Published, got, want)
				}
			}
		}
	}

	// A large answer from a task on the other node crosses VXLAN (MTU 1450).
	r, err := mesh.Ask(context.Background(), st.Client.Netns, "tcp", "192.168.77.10:8080", "/?size=300000")
	if err != nil || len(r.Body) != 300000 {
		t.Errorf("large body: %d bytes, %v", len(r.Body), err)
	}

	// The real CLI exec path: curl in the client, exit codes passed on.
	out, errs, code := meshtest.Run(t, "mesh", "exec", "--name", name, "client", "--", "curl", "-s", "-m", "3", "192.168.77.11:8080")
	if first, _, _ := strings.Cut(out, "\n"); code != 0 || !strings.HasPrefix(first, "web.") {
		t.Errorf("mesh exec client curl: exit %d, %q %s", code, out, errs)
	}
	if _, _, code := meshtest.Run(t, "mesh", "exec", "--name", name, "node1", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("mesh exec exit code %d, want 7", code)
	}
	out, _, _ = meshtest.Run(t, "mesh", "ls", "-o", "json")
	var ls []mesh.Summary
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("mesh ls -o json: %v\n%s", err, out)
	}
	found := false
	for _, m := range ls {
		found = found || (m.Name == name && m.Phase == mesh.PhaseReady && m.Tasks == 5 && m.Nodes == 2)
	}
	if !found {
		t.Errorf("mesh ls lacks %s: %+v", name, ls)
	}

	checkPath(t, name, st)

	out, errs, code = meshtest.Run(t, "mesh", "down", "--name", name)
	if code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("mesh down: exit %d\n%s%s", code, out, errs)
	}
	assertRestored(t, name, before)
	out, _, code = meshtest.Run(t, "mesh", "down", "--name", name)
	if code != 0 || !strings.Contains(out, "nothing to remove") {
		t.Errorf("second mesh down: exit %d, %q", code, out)
	}
}

// checkPath runs `meshtrace path --mesh --node` on both nodes and checks
// that the path is complete and lists every task as a backend: local ones
// with their netns and REDIRECT to the target port, remote ones as remote.
func checkPath(t *testing.T, name string, st *mesh.State) {
	t.Helper()
	type backend struct {
		IP         string  `json:"ip"`
		Netns      *string `json:"netns"`
		Remote     bool    `json:"remote"`
		TargetPort int     `json:"target_port"`
	}
	type hop struct {
		Kind  string `json:"kind"`
		Netns string `json:"netns"`
		Impl  string `json:"impl"`
	}
	var path struct {
		Complete bool      `json:"complete"`
		Hops     []hop     `json:"hops"`
		Backends []backend `json:"backends"`
	}
	for _, node := range st.Nodes {
		for _, svc := range st.Services {
			out, errs, code := meshtest.Run(t, "path", "--mesh", name, "--node", node.Name, "--port", fmt.Sprint(svc.Published), "--proto", svc.Proto, "-o", "json")
			if code != 0 {
				t.Errorf("path --node %s --port %d: exit %d\n%s%s", node.Name, svc.Published, code, out, errs)
				continue
			}
			if err := json.Unmarshal([]byte(out), &path); err != nil {
				t.Fatalf("path -o json: %v\n%s", err, out)
			}
			kinds := []string{}
			for _, h := range path.Hops {
				kinds = append(kinds, h.Kind)
			}
			if !path.Complete || !strings.Contains(strings.Join(kinds, ","), "dnat,mark,ipvs,snat") {
				t.Errorf("%s %s/%d: complete %v, hops %v", node.Name, svc.Proto, svc.Published, path.Complete, kinds)
			}
			if len(path.Backends) != len(svc.Tasks) {
				t.Errorf("%s %s/%d: %d backends, want %d", node.Name, svc.Proto, svc.Published, len(path.Backends), len(svc.Tasks))
			}
			for _, task := range svc.Tasks {
				var b *backend
				for i := range path.Backends {
					if path.Backends[i].IP == task.IP.String() {
						b = &path.Backends[i]
					}
				}
				switch {
				case b == nil:
					t.Errorf("%s: task %s (%s) is not a backend", node.Name, task.Name, task.IP)
				case task.Node == node.Name && (b.Remote || b.Netns == nil || *b.Netns != filepath.Base(task.Netns) || b.TargetPort != svc.Target):
					t.Errorf("%s: local task %s: backend %+v", node.Name, task.Name, *b)
				case task.Node != node.Name && (!b.Remote || b.Netns != nil):
					t.Errorf("%s: task %s on %s should be remote: %+v", node.Name, task.Name, task.Node, *b)
				}
			}
		}
	}
}

// TestDownAfterAgentKilled: kill -9 the agent; status says so; down still
// removes everything.
func TestDownAfterAgentKilled(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshtest.Name(t)
	before := takeSnapshot(t, name)
	meshtest.Up(t, name, "--nodes", "2", "--service", "web:8080:80x2", "--lb", "iptables")
	st, _ := statusJSON(t, name)
	if err := killPID(st.AgentPID); err != nil {
		t.Fatal(err)
	}
	st, code := statusJSON(t, name)
	if code != 1 || st.Health.AgentAlive || st.Health.Healthy {
		t.Errorf("status after kill -9: exit %d, health %+v", code, st.Health)
	}
	if st.Services[0].Tasks[0].Answering == nil || *st.Services[0].Tasks[0].Answering {
		t.Errorf("a task answers without its agent")
	}
	if out, errs, code := meshtest.Run(t, "mesh", "down", "--name", name); code != 0 {
		t.Fatalf("mesh down: exit %d\n%s%s", code, out, errs)
	}
	assertRestored(t, name, before)
}

func TestMeshBadInput(t *testing.T) {
	testutil.NeedRoot(t)
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad spec", []string{"--service", "web:8080"}, "want NAME:PUBLISHED:TARGET"},
		{"port twice", []string{"--service", "web:8080:80x1", "--service", "api:8080:81x1"}, "already used by service web"},
		{"too many replicas", []string{"--service", "web:8080:80x300"}, "addresses on the ingress network"},
		{"bad lb", []string{"--lb", "nft"}, "--lb"},
		{"bad nodes", []string{"--nodes", "0"}, "--nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := meshtest.Name(t)
			before := takeSnapshot(t, name)
			t.Cleanup(func() { meshtest.Down(t, name) })
			out, errs, code := meshtest.Run(t, append([]string{"mesh", "up", "--name", name}, tc.args...)...)
			if code == 0 || !strings.Contains(errs, tc.wantErr) {
				t.Errorf("mesh up %v: exit %d, stderr %q, want an error containing %q (stdout %q)", tc.args, code, errs, tc.wantErr, out)
			}
			assertRestored(t, name, before)
		})
	}
	t.Run("bad name", func(t *testing.T) {
		_, errs, code := meshtest.Run(t, "mesh", "up", "--name", "../../etc")
		if code == 0 || !strings.Contains(errs, "mesh name") {
			t.Errorf("exit %d, %q", code, errs)
		}
	})
	t.Run("ipvs without IPVS", func(t *testing.T) {
		if ok, _ := mesh.NewSystem().HasIPVS(); ok {
			t.Skip("this kernel has IPVS")
		}
		name := meshtest.Name(t)
		before := takeSnapshot(t, name)
		_, errs, code := meshtest.Run(t, "mesh", "up", "--name", name, "--lb", "ipvs")
		if code == 0 || !strings.Contains(errs, "no IPVS") {
			t.Errorf("exit %d, %q", code, errs)
		}
		assertRestored(t, name, before)
	})
	t.Run("name clash", func(t *testing.T) {
		name := meshtest.Name(t)
		meshtest.Up(t, name, "--nodes", "1", "--lb", "iptables")
		_, errs, code := meshtest.Run(t, "mesh", "up", "--name", name, "--nodes", "1", "--lb", "iptables")
		if code == 0 || !strings.Contains(errs, "already exists") {
			t.Errorf("second up: exit %d, %q", code, errs)
		}
		if st, code := statusJSON(t, name); code != 0 || !st.Health.Healthy {
			t.Errorf("the first mesh suffered from the clash: exit %d, %+v", code, st.Health)
		}
	})
}
