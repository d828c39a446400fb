package doctor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

// brokenFixtures are the recorded bundles that hold a fault on purpose,
// with the only codes above info doctor may report on them.
var brokenFixtures = map[string][]string{
	"captures/bundle-node0-broken":     {"redirect-wrong"},
	"cmdout/vm-ipvs-weight-zero/node0": {"backends-weight-zero"},
}

// TestNoFalsePositives: doctor reports nothing at warning or error on
// every recorded healthy node (real Docker 20.10 and 28 nodes, the
// built-in mesh, the write-up layouts), as collected and as read with
// plain `ip addr`; the recordings of a fault report only that fault.
func TestNoFalsePositives(t *testing.T) {
	for _, dir := range testutil.RecordedBundles(t, "../fixtures") {
		rel, _ := filepath.Rel("../fixtures", dir)
		allowed := map[string]bool{}
		for _, c := range brokenFixtures[filepath.ToSlash(rel)] {
			allowed[c] = true
		}
		for variant, d := range map[string]string{"as recorded": dir, "plain ip addr": testutil.PlainBundle(t, dir)} {
			r := checkBundle(t, d)
			for _, f := range serious(r) {
				if !allowed[f.Code] {
					t.Errorf("%s (%s): %s [%s] in %s: %s\n  evidence: %s", rel, variant, strings.ToUpper(string(f.Severity)), f.Code, f.Netns, f.Summary, f.Evidence)
				}
			}
		}
	}
}

// TestMeshBundleDocker: a bundle of the built-in mesh (collect --mesh)
// carries Docker's metadata as a real node's does: the node's advertise
// address and its peers come from the networks' Peers, and every task
// namespace is joined to its task.
func TestMeshBundleDocker(t *testing.T) {
	for _, node := range []string{"node0", "node1", "node2"} {
		m, err := source.Load(context.Background(), source.Spec{Bundle: "../fixtures/mesh-bundle/" + node})
		if err != nil {
			t.Fatal(err)
		}
		if adv := topology.AdvertiseAddress(m); adv.Weak || !strings.HasPrefix(adv.From, "Docker: this node is peer") {
			t.Errorf("%s: advertise address %+v, want Docker's", node, adv)
		}
		peers := topology.PeerNodes(m)
		if len(peers) != 2 {
			t.Errorf("%s: peers %+v, want the two other nodes", node, peers)
		}
		for _, p := range peers {
			if !strings.HasPrefix(p.From, "Docker: peer") {
				t.Errorf("%s: peer %s known from %q, want Docker's peers", node, p.Addr, p.From)
			}
		}
		tasks := 0
		for _, ns := range m.Namespaces {
			if ns.Role != topology.RoleTask {
				continue
			}
			tasks++
			if ns.Docker == nil || ns.Docker.Task == "" || ns.Docker.Service == "" {
				t.Errorf("%s: task namespace %s is not joined to its task: %+v", node, ns.Name, ns.Docker)
			}
		}
		if tasks == 0 {
			t.Errorf("%s: no task namespace", node)
		}
	}
}
