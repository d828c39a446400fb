package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

// meshBundle is a mesh node recorded with every file `meshtrace collect`
// writes (fixtures/cmdout/mesh-state, see its README).
const meshBundle = "../fixtures/cmdout/mesh-state/node0"

// copyBundle copies the recorded bundle into a temporary directory with
// edit applied to one file (relative to netns/): what an operator's bundle
// of a node with that fault would hold.
func copyBundle(t *testing.T, file string, edit func(string) string) string {
	t.Helper()
	return copyDir(t, meshBundle, filepath.Join("netns", file), edit)
}

func checkBundle(t *testing.T, dir string) *doctor.Report {
	t.Helper()
	m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
	if err != nil {
		t.Fatal(err)
	}
	return doctor.Check(m, doctor.Options{})
}

// roleOf names the recorded namespaces by role: their names change with
// every recording.
func roleOf(t *testing.T) map[topology.Role][]string {
	t.Helper()
	m, err := source.Load(context.Background(), source.Spec{Bundle: meshBundle})
	if err != nil {
		t.Fatal(err)
	}
	out := map[topology.Role][]string{}
	for _, ns := range m.Namespaces {
		out[ns.Role] = append(out[ns.Role], ns.Name)
	}
	return out
}

// TestOfflineHealthy: the recorded healthy node has nothing above info,
// and its remote backends are checked (no overlay-not-collected).
func TestOfflineHealthy(t *testing.T) {
	r := checkBundle(t, meshBundle)
	for _, f := range r.Findings {
		if f.Severity != doctor.Info || f.Code == "overlay-not-collected" {
			t.Errorf("healthy recorded node: %s in %s: %s", f.Code, f.Netns, f.Summary)
		}
	}
}

// TestOfflineFaults: the checks that read sysctls, sockets, neighbours,
// FDB and conntrack find their fault in a bundle's files alone.
func TestOfflineFaults(t *testing.T) {
	roles := roleOf(t)
	ovl := roles[topology.RoleOverlay][0]
	setSysctl := func(key, val string) func(string) string {
		return func(s string) string {
			return regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(key)+` = .*$`).ReplaceAllString(s, key+" = "+val)
		}
	}
	webTask := ""
	for _, task := range roles[topology.RoleTask] {
		if b, _ := os.ReadFile(filepath.Join(meshBundle, "netns", task, "ss.txt")); strings.Contains(string(b), "tcp LISTEN") {
			webTask = task
		}
	}
	cases := []struct {
		name, file, code, netns string
		edit                    func(string) string
	}{
		{"no-forward", "host/sysctl.txt", "forwarding-disabled", "host", setSysctl("net.ipv4.ip_forward", "0")},
		{"rp-filter", "ingress_sbox/sysctl.txt", "rp-filter-strict", "ingress_sbox", setSysctl("net.ipv4.conf.eth1.rp_filter", "1")},
		{"no-fdb", ovl + "/bridge-fdb.txt", "vxlan-no-fdb", ovl, dropLines(" dst ")},
		{"stop-task", webTask + "/ss.txt", "task-not-listening", webTask, dropLines("tcp LISTEN")},
		{"block-vxlan", "host/iptables-save.txt", "vxlan-blocked", "host", func(s string) string {
			i := strings.Index(s, "*filter\n")
			j := i + strings.Index(s[i:], "\nCOMMIT\n")
			return s[:j] + "\n[0:0] -A INPUT -p udp -m udp --dport 4789 -j DROP" + s[j:]
		}},
		{"stale-conntrack", "ingress_sbox/conntrack.txt", "stale-conntrack", "ingress_sbox", func(s string) string {
			return s + "udp      17 29 src=192.168.77.9 dst=172.18.0.2 sport=40000 dport=5353 src=10.0.0.99 dst=10.0.0.2 sport=5353 dport=40000 mark=0 use=1\n"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.HasPrefix(c.file, "/") {
				t.Fatalf("no namespace for %s", c.file)
			}
			r := checkBundle(t, copyBundle(t, c.file, c.edit))
			var serious []string
			found := false
			for _, f := range r.Findings {
				if f.Severity == doctor.Info {
					continue
				}
				serious = append(serious, f.Code+"@"+f.Netns)
				found = found || (f.Code == c.code && f.Netns == c.netns)
			}
			if !found {
				t.Errorf("want %s in %s, got %v", c.code, c.netns, serious)
			}
		})
	}
}
