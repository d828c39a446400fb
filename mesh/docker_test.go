package mesh

import (
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

func TestDockerMeta(t *testing.T) {
	st := testPlan(t, 2, LBIptables, "web:8080:80x3", "dns:5353:53/udpx1").State()
	d := st.DockerMeta("node0")
	local := 0
	for _, s := range st.Services {
		for _, tk := range s.Tasks {
			if tk.Node == "node0" {
				local++
			}
			if d.Networks[0].Endpoints[tk.Name] != tk.IP {
				t.Errorf("task %s endpoint %q, want %s", tk.Name, d.Networks[0].Endpoints[tk.Name], tk.IP)
			}
		}
	}
	if len(d.Containers) != local || local == 0 {
		t.Fatalf("%d containers for node0, want its %d local tasks", len(d.Containers), local)
	}
	c := d.Containers[0]
	m := &topology.Model{Namespaces: []*topology.Namespace{{NetnsRef: topology.NetnsRef{Name: c.ID}}}, Docker: d}
	topology.AnnotateDocker(m)
	if meta := m.Namespaces[0].Docker; meta == nil || meta.Task != c.Task || meta.Service == "" {
		t.Fatalf("annotation of %s: %+v", c.ID, meta)
	}
	if got := d.Services[0].Ports[0]; got.Published != 8080 || got.Target != 80 || got.Proto != "tcp" {
		t.Errorf("ports %+v", got)
	}
	if sb := d.Networks[0].Endpoints[topology.IngressSandboxEndpoint]; sb != st.Nodes[0].SandboxIP || !sb.IsValid() {
		t.Errorf("ingress-sbox endpoint %q", sb)
	}
}
