package doctor_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/topology"
)

// twoNode is node0 of a real two-node swarm (fixtures/swarm-vm2): its
// published ports have backends on node1, reached over the ingress
// overlay's VXLAN.
const twoNode = "../fixtures/swarm-vm2/node0"

// copyDir copies src into a temporary directory, passing the file named
// rel (relative to src) through edit.
func copyDir(t *testing.T, src, rel string, edit func(string) string) string {
	t.Helper()
	dst := t.TempDir()
	testutil.CopyTree(t, src, dst, func(r string, b []byte) []byte {
		if r == rel {
			return []byte(edit(string(b)))
		}
		return b
	})
	return dst
}

// remoteBackends reconstructs every published port's path of the bundle at
// dir and returns the remote backends, with the doctor report.
func remoteBackends(t *testing.T, dir string) ([]topology.Backend, *doctor.Report) {
	t.Helper()
	m, err := inspect.Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	topology.Classify(m)
	var out []topology.Backend
	for _, pp := range topology.PublishedPorts(m) {
		p, err := topology.FindPath(m, topology.Query{Proto: pp.Proto, Port: pp.Port})
		if err != nil {
			t.Fatalf("path %s/%d: %v", pp.Proto, pp.Port, err)
		}
		for _, b := range p.Backends {
			if b.Remote {
				out = append(out, b)
			}
		}
	}
	return out, doctor.Check(m, doctor.Options{})
}

// TestTwoNodeRemoteTasks: the remote backends get the task, service and
// node that `docker network inspect --verbose` gives, and that node is the
// VTEP the overlay's FDB sends them to.
func TestTwoNodeRemoteTasks(t *testing.T) {
	bs, r := remoteBackends(t, twoNode)
	if len(bs) == 0 {
		t.Fatal("no remote backend in the two-node fixture")
	}
	for _, b := range bs {
		if b.Task == "" || b.Service == "" || !strings.HasPrefix(b.Task, b.Service+".") {
			t.Errorf("remote backend %s: task %q service %q", b.IP, b.Task, b.Service)
		}
		if b.Node == "" || b.Node != b.VTEP {
			t.Errorf("remote backend %s: node %q, vtep %q", b.IP, b.Node, b.VTEP)
		}
	}
	for _, f := range r.Findings {
		if f.Severity != doctor.Info {
			t.Errorf("healthy two-node fixture: %s in %s: %s", f.Code, f.Netns, f.Summary)
		}
	}
}

// TestTwoNodeWrongVTEP: an FDB entry sending a task's MAC to a node the
// task does not run on is reported where it is, with both addresses.
func TestTwoNodeWrongVTEP(t *testing.T) {
	bs, _ := remoteBackends(t, twoNode)
	if len(bs) == 0 {
		t.Fatal("no remote backend in the two-node fixture")
	}
	b := bs[0]
	ovl := strings.SplitN(b.Via, "/", 2)[0]
	// The backend's MAC is the neighbour entry's lladdr.
	neigh, err := os.ReadFile(filepath.Join(twoNode, "netns", ovl, "ip-neigh.txt"))
	if err != nil {
		t.Fatal(err)
	}
	mac := ""
	for _, l := range strings.Split(string(neigh), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[0] == b.IP && f[3] == "lladdr" {
			mac = f[4]
		}
	}
	if mac == "" {
		t.Fatalf("no neighbour entry for %s in %s", b.IP, ovl)
	}
	dir := copyDir(t, twoNode, filepath.Join("netns", ovl, "bridge-fdb.txt"), func(s string) string {
		return strings.ReplaceAll(s, mac+" dev vxlan0 dst "+b.VTEP, mac+" dev vxlan0 dst 192.0.2.99")
	})
	_, r := remoteBackends(t, dir)
	var got []string
	for _, f := range r.Findings {
		if f.Severity == doctor.Info {
			continue
		}
		got = append(got, f.Code+"@"+f.Netns)
		if f.Code == "vxlan-wrong-vtep" && (!strings.Contains(f.Evidence, "192.0.2.99") || !strings.Contains(f.Evidence, b.Node)) {
			t.Errorf("evidence %q names neither the wrong VTEP nor the node", f.Evidence)
		}
	}
	if len(got) == 0 {
		t.Errorf("want vxlan-wrong-vtep in %s, got nothing above info", ovl)
	}
	for _, g := range got {
		if g != "vxlan-wrong-vtep@"+ovl {
			t.Errorf("want vxlan-wrong-vtep in %s only, got %v", ovl, got)
			break
		}
	}
}
