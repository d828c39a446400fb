package mesh

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/topology"
)

// TestEngine: the mesh's engine, written as the JSON `docker network
// inspect --verbose` / `docker inspect` / `docker service inspect` print
// and read back by the bundle's reader, gives the model what a real
// swarm node's would: the node's task containers (joined to their netns),
// every node's tasks with the node they run on, the network's peers with
// this node's advertise address among them, the services' ports and VIPs.
func TestEngine(t *testing.T) {
	st := testPlan(t, 2, LBIptables, "web:8080:80x3", "dns:5353:53/udpx1", "db:dnsrr:5432x2").State()
	e := st.Engine("node0")
	ctx := context.Background()
	nets, err := e.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctrs, _ := e.Containers(ctx)
	svcs, _ := e.Services(ctx)
	var docs [3][]byte
	for i, v := range []any{nets, ctrs, svcs} {
		if docs[i], err = json.MarshalIndent(v, "", "    "); err != nil {
			t.Fatal(err)
		}
	}
	d, err := inspect.DockerFromJSON(docs[0], docs[1], docs[2])
	if err != nil {
		t.Fatal(err)
	}
	var ingress *topology.DockerNetwork
	for i := range d.Networks {
		if d.Networks[i].Ingress {
			ingress = &d.Networks[i]
		}
	}
	if ingress == nil || ingress.ID != st.OverlayID || ingress.Subnet != addrplan.IngressSubnet {
		t.Fatalf("ingress network: %+v", d.Networks)
	}
	if len(ingress.Peers) != len(st.Nodes) || ingress.Peers[0].IP != st.Nodes[0].IP || ingress.Peers[1].IP != st.Nodes[1].IP {
		t.Errorf("peers %+v, want every node's address", ingress.Peers)
	}
	tasks := map[string]topology.DockerTask{}
	for _, tk := range ingress.Tasks {
		tasks[tk.Name] = tk
	}
	local := 0
	for _, s := range st.Services {
		for _, tk := range s.Tasks {
			got := tasks[tk.Name]
			if got.IP != tk.IP || got.Service != s.Name || got.Node != st.nodeIP(tk.Node) {
				t.Errorf("task %s: %+v, want %s on %s (%s)", tk.Name, got, tk.IP, tk.Node, st.nodeIP(tk.Node))
			}
			if tk.Node == "node0" {
				local++
				if ingress.Endpoints[containerName(st, tk)] != tk.IP {
					t.Errorf("local task %s has no endpoint: %v", tk.Name, ingress.Endpoints)
				}
			} else if _, ok := ingress.Endpoints[containerName(st, tk)]; ok {
				t.Errorf("remote task %s is a local endpoint", tk.Name)
			}
		}
	}
	if sb := ingress.Endpoints[topology.IngressSandboxEndpoint]; sb != st.Nodes[0].SandboxIP || !sb.IsValid() {
		t.Errorf("ingress-sbox endpoint %q", sb)
	}
	if len(d.Containers) != local || local == 0 {
		t.Fatalf("%d containers for node0, want its %d local tasks", len(d.Containers), local)
	}
	for _, c := range d.Containers {
		m := &topology.Model{Namespaces: []*topology.Namespace{{NetnsRef: topology.NetnsRef{Name: filepath.Base(c.SandboxKey)}}}, Docker: d}
		topology.AnnotateDocker(m)
		if meta := m.Namespaces[0].Docker; meta == nil || meta.Task != c.Task || meta.Service == "" || c.Task == "" {
			t.Errorf("annotation of %s (task %q): %+v", c.SandboxKey, c.Task, meta)
		}
	}
	byName := map[string]topology.DockerService{}
	for _, s := range d.Services {
		byName[s.Name] = s
	}
	if got := byName["web"]; len(got.Ports) != 1 || got.Ports[0] != (topology.DockerPort{Proto: "tcp", Published: 8080, Target: 80, Mode: "ingress"}) ||
		got.VIPs[st.OverlayID].Addr() != st.Services[0].VIP {
		t.Errorf("web: %+v", got)
	}
	if got := byName["dns"]; len(got.Ports) != 1 || got.Ports[0].Proto != "udp" {
		t.Errorf("dns: %+v", got)
	}
	if got := byName["db"]; got.EndpointMode != EndpointDNSRR || len(got.Ports) != 0 || len(got.VIPs) != 0 {
		t.Errorf("db: %+v", got)
	}
	if _, err := st.Engine("node9").Networks(ctx); err == nil {
		t.Error("an engine of a node the mesh has not: no error")
	}
}
