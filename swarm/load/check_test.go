package load_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/bench/bundles"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/swarm/load"
)

// swarmOf copies the bundles (node name -> bundle directory) into a swarm
// directory.
func swarmOf(t *testing.T, bundles map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range bundles {
		if out, err := exec.Command("cp", "-a", b, filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v: %s", b, err, out)
		}
	}
	return dir
}

// checkBoth checks dir's nodes read for the check (CheckDir) and read
// whole (Dir): the two reports must be the same.
func checkBoth(t *testing.T, dir string) *swarm.Report {
	t.Helper()
	var part, whole swarm.Checker
	if err := load.CheckDir(context.Background(), dir, part.Add); err != nil {
		t.Fatal(err)
	}
	if err := load.Dir(context.Background(), dir, whole.Add); err != nil {
		t.Fatal(err)
	}
	r := part.Report()
	got, _ := json.Marshal(r)
	want, _ := json.Marshal(whole.Report())
	if string(got) != string(want) {
		t.Fatalf("swarm %s: the check of the bundles read for it differs from their check read whole:\n%s\nwhole:\n%s", dir, got, want)
	}
	return r
}

// TestCheckDirFixtures: on every recorded bundle of the repository, the
// check reads the same whether it skips what it does not compare or not:
// the mesh's three nodes, the two Docker 28 nodes with IPsec, and every
// bundle as a node of one swarm.
func TestCheckDirFixtures(t *testing.T) {
	root := "../../fixtures"
	checkBoth(t, swarmOf(t, map[string]string{"node0": root + "/mesh-bundle/node0", "node1": root + "/mesh-bundle/node1", "node2": root + "/mesh-bundle/node2"}))
	checkBoth(t, swarmOf(t, map[string]string{"node0": root + "/swarm-vm28-xfrm/node0/collect", "node1": root + "/swarm-vm28-xfrm/node1/collect"}))
	all := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() != "netns" {
			return err
		}
		if st, err := os.Stat(filepath.Join(p, "host")); err == nil && st.IsDir() {
			b := filepath.Dir(p)
			rel, _ := filepath.Rel(root, b)
			all[strings.ReplaceAll(rel, "/", "_")] = b
		}
		return filepath.SkipDir
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 20 {
		t.Fatalf("%d fixture bundles found, want the repository's (20 or more)", len(all))
	}
	r := checkBoth(t, swarmOf(t, all))
	if len(r.Nodes) != len(all) {
		t.Errorf("%d nodes checked, want %d", len(r.Nodes), len(all))
	}
}

// TestCheckDirReadsSandboxNamedLikeContainer: a node whose ingress sandbox
// folder is named like a container's sandbox (12 hex digits), whose
// firewall and sysctls CheckDir skips at first, is read whole: its
// sysctls and marks are compared, not "not checked".
func TestCheckDirReadsSandboxNamedLikeContainer(t *testing.T) {
	dir := t.TempDir()
	if _, err := bundles.WriteSwarm(dir, bundles.SwarmSpec{Nodes: 3, TasksPerNode: 4, Services: 2}); err != nil {
		t.Fatal(err)
	}
	ns := filepath.Join(dir, "node01", "netns")
	if err := os.Rename(filepath.Join(ns, "ingress_sbox"), filepath.Join(ns, "0123456789ab")); err != nil {
		t.Fatal(err)
	}
	r := checkBoth(t, dir)
	if !r.Consistent {
		t.Errorf("not consistent: %+v", r.Findings)
	}
	for _, n := range r.Nodes {
		for _, c := range []swarm.CheckName{swarm.CheckBackends, swarm.CheckSysctl, swarm.CheckIPVS} {
			if n.Checks[c] != swarm.StatusOK {
				t.Errorf("%s: %s is %s, want ok", n.Name, c, n.Checks[c])
			}
		}
	}
}
