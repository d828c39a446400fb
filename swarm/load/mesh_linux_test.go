package load_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/swarm/collect"
	"github.com/meshtrace/meshtrace/swarm/load"
	"github.com/meshtrace/meshtrace/topology"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var meshNodes = []string{"node0", "node1", "node2"}

// fromBundles collects every node of the mesh with the binary into
// DIR/<node>/ and reads them back as a swarm directory: with collect
// --mesh, or (framed) as each task of swarm collect's global job does,
// collect --in-process --stdout-frame, its stdout decoded and extracted
// as swarm collect does with a task's log.
func fromBundles(t *testing.T, name string, framed bool) []swarm.Node {
	t.Helper()
	dir := t.TempDir()
	for _, n := range meshNodes {
		if !framed {
			args := []string{"collect", "--mesh", name, "--node", n, filepath.Join(dir, n)}
			if out, errs, code := meshtest.Run(t, args...); code != 0 {
				t.Fatalf("meshtrace %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
			}
			continue
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(testutil.Meshtrace(t), "collect", "--in-process", "--stdout-frame", "--mesh", name, "--node", n)
		cmd.Env = append(os.Environ(), collect.EnvNode+"="+n, collect.EnvNodeID+"=id"+n)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("collect --in-process --stdout-frame --node %s: %v\n%s", n, err, stderr.String())
		}
		f, err := collect.Decode(&stdout, collect.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if f.Node != n || f.ID != "id"+n {
			t.Fatalf("frame of node %s says %+v", n, f.Header)
		}
		out, err := safefile.CreateDir(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := collect.Extract(f.Tar, out, collect.Limits{}); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	nodes, err := load.Nodes(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

func live(t *testing.T, name string) []swarm.Node {
	t.Helper()
	nodes, err := load.Mesh(context.Background(), name, source.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// findings are the report's findings above info, as "node code".
func findings(r *swarm.Report) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == doctor.Error || f.Severity == doctor.Warning {
			out = append(out, f.Node+" "+string(f.Code))
		}
	}
	return out
}

// TestMeshSwarm: a healthy 3-node mesh is consistent, live and from
// bundles; each per-node fault (mesh break --node) is named on that node
// and no other, live, from collect's bundles and from the frames of the
// in-process collection (what swarm collect's tasks send); mesh repair
// makes it consistent again.
func TestMeshSwarm(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshtest.Name(t)
	meshtest.Up(t, name, "--nodes", "3", "--service", "web:8080:80x3")
	q := topology.Query{Proto: "tcp", Port: 8080}

	sources := map[string]func() []swarm.Node{
		"live":    func() []swarm.Node { return live(t, name) },
		"bundles": func() []swarm.Node { return fromBundles(t, name, false) },
		"framed":  func() []swarm.Node { return fromBundles(t, name, true) },
	}
	order := []string{"live", "bundles", "framed"}
	for _, src := range order {
		nodes := sources[src]()
		if len(nodes) != 3 {
			t.Fatalf("%s: %d nodes", src, len(nodes))
		}
		r := swarm.Check(nodes)
		if !r.Consistent || len(findings(r)) > 0 {
			t.Errorf("%s, healthy: consistent %v, findings %v", src, r.Consistent, findings(r))
		}
		if p := swarm.Paths(nodes, q); !p.Complete {
			t.Errorf("%s, healthy: swarm path not complete: %+v", src, p.Nodes)
		}
	}
	for _, c := range []struct {
		fault, node string
		code        swarm.Code
	}{
		{"stale-backend", "node1", swarm.CodeBackends},
		{"no-fdb", "node2", swarm.CodeFDB},
		{"no-dnat", "node0", swarm.CodePublished},
	} {
		t.Run(c.fault, func(t *testing.T) {
			if out, errs, code := meshtest.Run(t, "mesh", "break", "--name", name, "--node", c.node, c.fault); code != 0 {
				t.Fatalf("mesh break %s: exit %d\n%s%s", c.fault, code, out, errs)
			}
			repaired := false
			repair := func() {
				if repaired {
					return
				}
				repaired = true
				if out, errs, code := meshtest.Run(t, "mesh", "repair", "--name", name); code != 0 {
					t.Errorf("mesh repair: exit %d\n%s%s", code, out, errs)
				}
			}
			t.Cleanup(repair)
			want := c.node + " " + string(c.code)
			for _, src := range order {
				nodes := sources[src]()
				r := swarm.Check(nodes)
				got := findings(r)
				if r.Consistent || len(got) == 0 {
					t.Errorf("%s: consistent %v, want %s", src, r.Consistent, want)
				}
				for _, f := range got {
					if f != want {
						t.Errorf("%s: finding %q, want only %q", src, f, want)
					}
				}
				// swarm path: every broken cell is on the faulty node.
				p := swarm.Paths(nodes, q)
				if p.Complete {
					t.Errorf("%s: swarm path complete with %s on %s", src, c.fault, c.node)
				}
				for _, n := range p.Nodes {
					for i, cell := range n.Cells {
						if cell.Verdict == topology.VerdictBroken && cell.At != c.node {
							t.Errorf("%s: %s -> %s broken at %s (%s), want breaks on %s only", src, n.Name, p.Backends[i].Label(), cell.At, cell.Code, c.node)
						}
					}
				}
			}
			repair()
			if r := swarm.Check(live(t, name)); !r.Consistent {
				t.Errorf("after repair: findings %v", findings(r))
			}
		})
	}
}
