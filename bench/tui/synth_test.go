package tuibench

import (
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/topology"
)

func TestSynthIsAMesh(t *testing.T) {
	m, err := Synth(500, 5000, 20)
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	for _, ns := range m.Namespaces {
		rules += ns.Firewall.RuleCount()
	}
	if len(m.Namespaces) != 500 || rules < 5000 {
		t.Fatalf("%d namespaces, %d rules", len(m.Namespaces), rules)
	}
	if r := m.Lookup("ingress_sbox").Role; r != topology.RoleIngressSandbox {
		t.Fatalf("sandbox classified %s", r)
	}
	start := time.Now()
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FindPath tcp/8080: %v, %d backends, complete %v", time.Since(start), len(p.Backends), p.Complete)
	if !p.Complete || len(p.Backends) != 497 {
		t.Fatalf("path complete=%v with %d backends: %+v", p.Complete, len(p.Backends), p.Hops)
	}
	start = time.Now()
	pub := topology.PublishedPorts(m)
	t.Logf("PublishedPorts: %v, %d ports", time.Since(start), len(pub))
}
