package swarm_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/topology"
)

// svc02's port on the synthetic swarm.
var q02 = topology.Query{Proto: "tcp", Port: 30002}

// cells are the cells of r that are not complete, as "node->label code".
func cells(r *swarm.PathReport) []string {
	var out []string
	for _, n := range r.Nodes {
		for i, c := range n.Cells {
			if c.Verdict != topology.VerdictComplete {
				out = append(out, n.Name+"->"+r.Backends[i].Label()+" "+string(c.Verdict)+" "+c.Code+" at "+c.At)
			}
		}
	}
	return out
}

func TestSwarmPathHealthy(t *testing.T) {
	r := swarm.Paths(load(t, swarmDir(t)), q02)
	if !r.Complete || r.Exit() != 0 {
		t.Fatalf("healthy swarm: complete %v exit %d, cells %v", r.Complete, r.Exit(), cells(r))
	}
	if len(r.Nodes) != nNodes || len(r.Backends) < nNodes {
		t.Fatalf("%d nodes, %d backends: want %d nodes and svc02's tasks on every node", len(r.Nodes), len(r.Backends), nNodes)
	}
	owners := map[string]bool{}
	for _, b := range r.Backends {
		owners[b.Node] = true
	}
	if len(owners) != nNodes || owners[""] {
		t.Errorf("backends' nodes %v: want each of the %d nodes, none unknown", owners, nNodes)
	}
	var b bytes.Buffer
	if err := swarm.WritePathText(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "complete from every node to every backend") {
		t.Errorf("text:\n%s", b.String())
	}
}

// A node that does not DNAT the port breaks every cell of its row, and
// only its row.
func TestSwarmPathNoDNATRow(t *testing.T) {
	dir := swarmDir(t)
	edit(t, dir, "node01", "netns/host/iptables-save.txt", dropLine(`\[0:0\] -A DOCKER-INGRESS -p tcp -m tcp --dport 30002 -j DNAT`))
	r := swarm.Paths(load(t, dir), q02)
	if r.Complete || r.Exit() != 3 {
		t.Fatalf("complete %v exit %d", r.Complete, r.Exit())
	}
	for _, n := range r.Nodes {
		for i, c := range n.Cells {
			broken := c.Verdict == topology.VerdictBroken
			if broken != (n.Name == "node01") {
				t.Errorf("%s -> %s: %s %s (%s)", n.Name, r.Backends[i].Label(), c.Verdict, c.Code, c.Reason)
			}
			if broken && c.At != "node01" {
				t.Errorf("break placed on %s", c.At)
			}
		}
	}
}

// A node whose IPVS table lost one real server breaks that one cell
// (not-a-backend): the others still reach it.
func TestSwarmPathMissingBackendCell(t *testing.T) {
	dir := swarmDir(t)
	ip := firstMatch(t, dir, "node02", "netns/ingress_sbox/ipvsadm.txt", `-a -f \d+ -r ([0-9.]+):0`)
	edit(t, dir, "node02", "netns/ingress_sbox/ipvsadm.txt", dropLine(`-a -f \d+ -r `+strings.ReplaceAll(ip, ".", `\.`)+`:`))
	nodes := load(t, dir)
	// The backend only matters for the service whose table lost it: find
	// its port by trying each.
	for p := 30000; p < 30000+nServices; p++ {
		r := swarm.Paths(nodes, topology.Query{Proto: "tcp", Port: p})
		bad := cells(r)
		if len(bad) == 0 {
			continue
		}
		if len(bad) != 1 || !strings.HasPrefix(bad[0], "node02->") || !strings.Contains(bad[0], "broken "+swarm.PathNotBackend+" at node02") {
			t.Fatalf("tcp/%d: cells %v, want only node02 -> the task of %s broken (not-a-backend)", p, bad, ip)
		}
		return
	}
	t.Fatal("no port lost a backend")
}

// A node not collected is unknown in its row, never complete.
func TestSwarmPathNotCollected(t *testing.T) {
	nodes := load(t, swarmDir(t))
	nodes[1].Model = nil
	r := swarm.Paths(nodes, q02)
	if r.Complete || r.Exit() != 4 {
		t.Fatalf("complete %v exit %d, cells %v", r.Complete, r.Exit(), cells(r))
	}
	for _, c := range r.Nodes[1].Cells {
		if c.Verdict != topology.VerdictUnknown || c.Code != swarm.PathNotCollected {
			t.Errorf("%s: %+v", nodes[1].Name, c)
		}
	}
}
