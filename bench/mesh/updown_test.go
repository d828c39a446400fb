package meshbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func webService(replicas int) []mesh.ServiceSpec {
	return []mesh.ServiceSpec{{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: replicas}}
}

func shell(tb testing.TB, args ...string) {
	tb.Helper()
	out, err := exec.Command("bash", append([]string{"shell-mesh.sh"}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("shell-mesh.sh %v: %v\n%s", args, err, out)
	}
}

// TestUpDownSpeed runs Line (what scripts/bench runs: one round of each)
// and logs it; timings are never asserted.
func TestUpDownSpeed(t *testing.T) {
	testutil.NeedRoot(t)
	if testing.Short() {
		t.Skip("the shell baseline takes tens of seconds")
	}
	l, err := Line(testutil.Meshtrace(t), ".", testutil.Prefix(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(l)
}

// TestShellEquivalent builds a small mesh both ways and compares what the
// kernel holds: rules, addresses, routes, links, VXLAN FDB and neighbours,
// sysctls. Without it the ratio would compare unlike things.
func TestShellEquivalent(t *testing.T) {
	testutil.NeedRoot(t)
	p := testutil.Prefix()
	goName, shName := p+"go", p+"sh"
	bin := testutil.Meshtrace(t)
	t.Cleanup(func() { mesh.Down(goName, mesh.Options{}) })
	cfg := mesh.Config{Name: goName, Nodes: 2, LB: mesh.LBIptables, Services: webService(3)}
	st, err := mesh.Up(context.Background(), cfg, mesh.Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("bash", "shell-mesh.sh", "down", shName).Run() })
	shell(t, "up", shName, "2", "3")

	task1, _, _ := st.Task("web.1")
	pairs := []struct{ what, goPath, shNetns string }{
		{"node0 host", st.Nodes[0].Host, shName + "-n0-host"},
		{"node1 sandbox", filepath.Join(st.Nodes[1].NetnsDir, "ingress_sbox"), shName + "-n1-sbox"},
		{"node0 overlay", filepath.Join(st.Nodes[0].NetnsDir, "1-"+st.OverlayID), shName + "-n0-ov"},
		{"task web.1", task1.Netns, shName + "-t1"},
	}
	probes := []struct {
		name string
		argv []string
		norm func(string) string
	}{
		{"iptables-save", []string{"iptables-save"}, normRules},
		{"addresses", []string{"ip", "-o", "-4", "addr", "show"}, normAddrs},
		{"routes", []string{"ip", "route", "show"}, sortLines},
		{"links", []string{"ip", "-d", "-j", "link", "show"}, normLinks},
		{"vxlan fdb", []string{"bridge", "fdb", "show", "dev", "vxlan0"}, normFDB},
		{"vxlan attributes", []string{"ip", "-d", "link", "show", "dev", "vxlan0"}, vxlanLine},
		{"vxlan neighbours", []string{"ip", "neigh", "show", "dev", "vxlan0"}, sortLines},
		{"sysctls", []string{"sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/net/ipv4/conf/docker_gwbridge/route_localnet 2>/dev/null || true"}, sortLines},
	}
	for _, pr := range pairs {
		for _, probe := range probes {
			if strings.HasPrefix(probe.name, "vxlan") && !strings.Contains(pr.what, "overlay") {
				continue
			}
			gotGo := probe.norm(run(t, append([]string{"nsenter", "--net=" + pr.goPath}, probe.argv...)...))
			gotSh := probe.norm(run(t, append([]string{"ip", "netns", "exec", pr.shNetns}, probe.argv...)...))
			if d := cmp.Diff(gotSh, gotGo); d != "" {
				t.Errorf("%s, %s differ (-shell +meshtrace):\n%s", pr.what, probe.name, d)
			}
		}
	}
}

func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return string(out)
}

var (
	counters = regexp.MustCompile(`\[\d+:\d+\]`)
	// The embedded DNS server's ports: random in Docker, from a hash in
	// meshtrace, from the task's number in the script.
	resolverPorts = regexp.MustCompile(`(127\.0\.0\.11:|--sport )\d+`)
)

func normRules(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, resolverPorts.ReplaceAllString(counters.ReplaceAllString(l, "[]"), "${1}PORT"))
		}
	}
	return strings.Join(out, "\n")
}

// normAddrs keeps "dev address" (ifindexes differ).
func normAddrs(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 {
			out = append(out, f[1]+" "+f[3])
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// normLinks keeps what must match: kind, MTU, master and, for the
// namespace's own named legs (eth*, bridges, vxlan0), name and MAC. Host-
// and overlay-side veth names and random MACs are free.
func normLinks(s string) string {
	var links []struct {
		Name     string `json:"ifname"`
		MTU      int    `json:"mtu"`
		Address  string `json:"address"`
		Master   string `json:"master"`
		LinkInfo struct {
			Kind string `json:"info_kind"`
		} `json:"linkinfo"`
		Flags []string `json:"flags"`
	}
	if err := json.Unmarshal([]byte(s), &links); err != nil {
		return "unparsable: " + err.Error()
	}
	var out []string
	for _, l := range links {
		up := strings.Contains(strings.Join(l.Flags, ","), "UP")
		name, mac := "veth*", ""
		if !strings.HasPrefix(l.Name, "veth") {
			name = l.Name
			if strings.HasPrefix(l.Name, "eth") {
				mac = l.Address
			}
		}
		out = append(out, fmt.Sprintf("%s kind=%s mtu=%d master=%s up=%v %s", name, l.LinkInfo.Kind, l.MTU, l.Master, up, mac))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// normFDB keeps the static entries pointing at remote VTEPs.
func normFDB(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, " dst ") {
			out = append(out, regexp.MustCompile(` link-netnsid \d+`).ReplaceAllString(l, ""))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// vxlanLine keeps the "vxlan id ..." attribute line.
func vxlanLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "vxlan id") {
			return l
		}
	}
	return "no vxlan line in: " + s
}

func sortLines(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	for i := range ls {
		ls[i] = strings.TrimSpace(ls[i])
	}
	sort.Strings(ls)
	return strings.Join(ls, "\n")
}
