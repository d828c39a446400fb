package source

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

const modern = "../fixtures/bundles/modern"

// TestLoadBundle: a bundle comes back read, with its docker/*.json attached
// to the namespaces and every namespace's role decided.
func TestLoadBundle(t *testing.T) {
	m, err := Load(context.Background(), Spec{Bundle: modern})
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "bundle:"+modern {
		t.Errorf("source %q", m.Source)
	}
	task := m.Lookup("09cd513d96a2")
	if task == nil || task.Role != topology.RoleTask || task.Docker == nil || task.Docker.Task != "web.1" || task.Docker.Service != "web" {
		t.Fatalf("task 09cd513d96a2: %+v", task)
	}
	for _, ns := range m.Namespaces {
		if ns.Role == "" {
			t.Errorf("%s: no role", ns.Name)
		}
	}
	if sb := m.Lookup("ingress_sbox"); sb == nil || sb.Role != topology.RoleIngressSandbox || sb.Docker == nil || sb.Docker.Network != "ingress" {
		t.Errorf("ingress_sbox: %+v", sb)
	}
}

func TestSpec(t *testing.T) {
	if err := (Spec{Bundle: "b", Mesh: "m"}).Check(); !errors.Is(err, ErrExclusive) {
		t.Errorf("bundle and mesh: %v", err)
	}
	if _, err := Load(context.Background(), Spec{Bundle: "b", Mesh: "m"}); !errors.Is(err, ErrExclusive) {
		t.Errorf("Load of bundle and mesh: %v", err)
	}
	for _, tc := range []struct {
		s    Spec
		want string
		live bool
	}{
		{Spec{Bundle: "dir"}, "bundle:dir", false},
		{Spec{Mesh: "demo"}, "mesh:demo/node0", true},
		{Spec{Mesh: "demo", Node: "node1"}, "mesh:demo/node1", true},
		{Spec{}, "this host", true},
	} {
		if got := tc.s.String(); got != tc.want || tc.s.Live() != tc.live {
			t.Errorf("%+v: %q live %v, want %q live %v", tc.s, got, tc.s.Live(), tc.want, tc.live)
		}
	}
}

// TestLoadEnvBundle: one node, its path and the address clients reach it
// on (the host's uplink); a port not published is the path's error.
func TestLoadEnvBundle(t *testing.T) {
	e, err := LoadEnv(context.Background(), Spec{Bundle: modern}, topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Nodes) != 1 || e.Mesh != nil {
		t.Fatalf("%d nodes, mesh %v", len(e.Nodes), e.Mesh)
	}
	n := e.Nodes[0]
	want, _ := topology.NodeAddress(n.Model.Lookup("host"))
	if n.Path == nil || len(n.Path.Backends) == 0 || !n.Addr.IsValid() || n.Addr != want {
		t.Errorf("node: path %+v, address %v (want %v)", n.Path, n.Addr, want)
	}
	if n.Addr != netip.MustParseAddr("192.168.56.11") {
		t.Errorf("address %v, want eth0's 192.168.56.11", n.Addr)
	}
	_, err = LoadEnv(context.Background(), Spec{Bundle: modern}, topology.Query{Proto: "tcp", Port: 9999})
	var np *topology.NotPublishedError
	if !errors.As(err, &np) {
		t.Errorf("tcp/9999: %v, want not published", err)
	}
}
