package inspect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/meshtrace/meshtrace/internal/kmod"
)

// fakeRunner answers commands from canned outputs keyed by "path|cmd". The
// tests that use it let collect load modules (kmod.Allow): what runs then
// does not depend on this machine's modules (modules_test.go tests the gate).
type fakeRunner struct {
	out       map[string]string
	fail      map[string]error
	installed map[string]bool

	mu  sync.Mutex
	ran []string
}

var _ CommandRunner = (*fakeRunner)(nil)

func (f *fakeRunner) Run(_ context.Context, path, name string, args ...string) ([]byte, error) {
	key := path + "|" + strings.Join(append([]string{name}, args...), " ")
	f.mu.Lock()
	f.ran = append(f.ran, key)
	f.mu.Unlock()
	if err, ok := f.fail[key]; ok {
		return nil, err
	}
	out, ok := f.out[key]
	if !ok {
		return nil, errors.New("unexpected command " + key)
	}
	return []byte(out), nil
}

func (f *fakeRunner) LookPath(name string) error {
	if f.installed[name] {
		return nil
	}
	return errors.New(name + ": executable file not found in $PATH")
}

type fakeProbe struct {
	ok     bool
	reason string
}

var _ IPVSProbe = fakeProbe{}

func (p fakeProbe) KernelIPVS() (bool, string) { return p.ok, p.reason }

// selfNetns is a namespace file any user can stat: the test's own.
const selfNetns = "/proc/self/ns/net"

// hostOutputs answers every command of collect with recorded output: a
// mesh node's host namespace (fixtures/cmdout/mesh-state) and, for IPVS,
// the modern bundle's sandbox and ipvsadm's own format.
func hostOutputs(t *testing.T) map[string]string {
	out := map[string]string{
		selfNetns + "|" + cmdIPVS.String():        fixtureFile(t, "modern/netns/ingress_sbox/ipvsadm.txt"),
		selfNetns + "|" + cmdIPVSTimeout.String(): cmdoutFile(t, "ipvsadm-from-source/ipvsadm-timeout.txt"),
		selfNetns + "|" + cmdIPVSStats.String():   cmdoutFile(t, "listings/bundles/modern/netns/ingress_sbox/ipvsadm/ipvsadm-Ln-stats.txt"),
		// the counters and the xfrm state of namespaces of this machine
		selfNetns + "|" + cmdSNMP.String():          cmdoutFile(t, "counters/snmp.txt"),
		selfNetns + "|" + cmdNetstat.String():       cmdoutFile(t, "counters/netstat.txt"),
		selfNetns + "|" + cmdConntrackStat.String(): cmdoutFile(t, "counters/nf_conntrack-stat.txt"),
		selfNetns + "|" + cmdLinkStats.String():     cmdoutFile(t, "counters/ip-stats.txt"),
		selfNetns + "|" + cmdXfrmState.String():     cmdoutFile(t, "xfrm/empty-ip-xfrm-state.txt"),
		selfNetns + "|" + cmdXfrmPolicy.String():    cmdoutFile(t, "xfrm/s-ip-xfrm-policy.txt"),
		// iptables-save is the nf_tables variant, and the legacy
		// backend has tables too
		"|iptables-save -V":                         "iptables-save v1.8.9 (nf_tables)\n",
		selfNetns + "|" + cmdIptablesOther.String(): cmdoutFile(t, "variants/legacy-iptables-save-c.txt"),
	}
	prev := map[string][]byte{}
	for _, c := range []collectCmd{cmdIPAddr, cmdIptables, cmdRoutes, cmdNeigh, cmdFDB, cmdSysctl, cmdSockets, cmdConntrack} {
		c, _, _ = c.inNetns(prev)
		b := cmdoutFile(t, "mesh-state/node0/netns/host/"+c.file)
		out[selfNetns+"|"+c.String()] = b
		prev[c.file] = []byte(b)
	}
	return out
}

// allTools are the commands collect runs, all installed.
var allTools = map[string]bool{"ip": true, "iptables-save": true, "ipvsadm": true, "bridge": true, "sysctl": true, "ss": true,
	"conntrack": true, "cat": true, "iptables-legacy-save": true}

func cmdoutFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "fixtures", "cmdout", p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCollectWritesABundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bundle")
	r := &fakeRunner{out: hostOutputs(t), installed: allTools}
	dk := &fakeDocker{
		nets: []network.Inspect{{Network: network.Network{ID: "c5h7abz82pq0h1rtmf8tjkxn4", Name: "ingress", Ingress: true}}},
		ctrs: []container.InspectResponse{{ID: "c1", Name: "/web.1.x", Config: &container.Config{Env: []string{"DB_PASSWORD=hunter2", "PATH=/bin"}}}},
		svcs: []swarm.Service{{ID: "s1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"}}}},
	}
	o := CollectOptions{HostNetns: selfNetns, Modules: kmod.Allow{}, NetnsDirs: []string{t.TempDir()}, Runner: r, IPVS: fakeProbe{ok: true}, Docker: dk}
	if err := Collect(context.Background(), o, dir); err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	want := []string{
		"NAMESPACES.txt", "docker/containers.json", "docker/networks.json", "docker/services.json",
		"netns/host/bridge-fdb.txt", "netns/host/conntrack.txt", "netns/host/ip-addr.txt", "netns/host/ip-neigh.txt",
		"netns/host/ip-route.txt", "netns/host/ip-stats.txt", "netns/host/ip-xfrm-policy.txt", "netns/host/ip-xfrm-state.txt",
		"netns/host/iptables-legacy-save.txt", "netns/host/iptables-save.txt", "netns/host/ipvsadm-stats.txt",
		"netns/host/ipvsadm-timeout.txt", "netns/host/ipvsadm.txt", "netns/host/netstat.txt", "netns/host/nf_conntrack-stat.txt",
		"netns/host/snmp.txt", "netns/host/ss.txt", "netns/host/sysctl.txt",
	}
	if d := cmp.Diff(want, files); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	// Exactly the command output, byte for byte.
	got, _ := os.ReadFile(filepath.Join(dir, "netns/host/iptables-save.txt"))
	if string(got) != r.out[selfNetns+"|iptables-save -c"] {
		t.Error("iptables-save.txt is not the command's output")
	}
	ctrs, _ := os.ReadFile(filepath.Join(dir, "docker/containers.json"))
	if strings.Contains(string(ctrs), "hunter2") || !strings.Contains(string(ctrs), "DB_PASSWORD=") {
		t.Errorf("environment not redacted (names kept):\n%s", ctrs)
	}

	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Namespaces) != 1 || m.Namespaces[0].Name != "host" || m.Namespaces[0].Firewall == nil || m.Namespaces[0].IPVS == nil {
		t.Fatalf("read back: %+v", m.Namespaces)
	}
	if !m.NetnsComplete {
		t.Error("collect's bundle does not read back as holding every namespace")
	}
	if h := m.Namespaces[0]; len(h.Routes) == 0 || len(h.Neighbours) == 0 || len(h.FDB) == 0 || h.Sysctls["net.ipv4.ip_forward"] != "1" ||
		len(h.Sockets) == 0 || len(h.Conntrack) == 0 || h.IPVS.Timeouts == nil || len(h.Errors) > 0 {
		t.Errorf("host state read back: routes %v neighbours %v fdb %v sysctls %v sockets %v conntrack %d timeouts %v errors %q",
			h.Routes, h.Neighbours, h.FDB, h.Sysctls, h.Sockets, len(h.Conntrack), h.IPVS.Timeouts, h.Errors)
	}
	if m.Docker == nil || len(m.Docker.Services) != 1 || m.Docker.Networks[0].Name != "ingress" || m.Docker.Containers[0].Name != "web.1.x" {
		t.Errorf("docker read back: %+v", m.Docker)
	}
	if len(m.Notes) != 0 {
		t.Errorf("notes = %q", m.Notes)
	}

	// Never into a non-empty directory.
	if err := Collect(context.Background(), o, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second collect into %s: err = %v", dir, err)
	}
}

func TestCollectNotCollected(t *testing.T) {
	dir := t.TempDir() // exists and is empty: accepted
	out := hostOutputs(t)
	r := &fakeRunner{
		out: out,
		fail: map[string]error{
			selfNetns + "|iptables-save -c": &CommandError{Err: errors.New("exit status 1"), Stderr: []byte("iptables-save: unable to\n initialize table 'nat'\n")},
			selfNetns + "|conntrack -L": &CommandError{Err: errors.New("exit status 1"),
				Stderr: []byte("conntrack v1.4.7 (conntrack-tools): Operation failed: Protocol not supported\n")},
		},
		installed: allTools,
	}
	dk := &fakeDocker{svcErr: errors.New("this node is not a swarm manager (swarm state active)")}
	o := CollectOptions{HostNetns: selfNetns, Modules: kmod.Allow{}, NetnsDirs: []string{filepath.Join(dir, "absent")}, Runner: r,
		IPVS: fakeProbe{reason: `generic netlink family "IPVS" not found`}, Docker: dk}
	if err := Collect(context.Background(), o, dir); err != nil {
		t.Fatal(err)
	}
	for _, key := range r.ran {
		if strings.Contains(key, "ipvsadm") {
			t.Errorf("ran ipvsadm on a kernel without IPVS: %s", key)
		}
	}
	for _, f := range []string{"netns/host/iptables-save.txt", "netns/host/ipvsadm.txt", "netns/host/ipvsadm-timeout.txt", "netns/host/conntrack.txt", "docker/services.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s written, want not collected", f)
		}
	}
	notes, err := os.ReadFile(filepath.Join(dir, "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := `docker/services.json not collected: docker services not available: this node is not a swarm manager (swarm state active)
ipvsadm-stats.txt not collected in any namespace: kernel has no IPVS (generic netlink family "IPVS" not found)
ipvsadm-timeout.txt not collected in any namespace: kernel has no IPVS (generic netlink family "IPVS" not found)
ipvsadm.txt not collected in any namespace: kernel has no IPVS (generic netlink family "IPVS" not found)
netns host: conntrack.txt not collected: conntrack -L: exit status 1: conntrack v1.4.7 (conntrack-tools): Operation failed: Protocol not supported
netns host: iptables-save.txt not collected: iptables-save -c: exit status 1: iptables-save: unable to initialize table 'nat'
`
	if d := cmp.Diff(want, string(notes)); d != "" {
		t.Errorf("NOTES.txt (-want +got):\n%s", d)
	}
	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	host := m.Namespaces[0]
	// The firewall was not collected; IPVS was not collected because the
	// kernel has none, which the bundle carries as a fact, like live.
	if host.Firewall != nil || host.Conntrack != nil || len(host.Links) == 0 || host.Sockets == nil {
		t.Errorf("host: firewall %v conntrack %v links %d sockets %v", host.Firewall, host.Conntrack, len(host.Links), host.Sockets)
	}
	if host.IPVS == nil || host.IPVS.Available || host.IPVS.Reason != NoIPVSReason {
		t.Errorf("host: ipvs %+v, want unavailable: %s", host.IPVS, NoIPVSReason)
	}
	// The bundle's own "services missing" note is not repeated.
	if d := cmp.Diff(strings.Split(strings.TrimSpace(want), "\n"), m.Notes); d != "" {
		t.Errorf("model notes (-want +got):\n%s", d)
	}
}

func TestCollectMissingTools(t *testing.T) {
	dir := t.TempDir()
	r := &fakeRunner{out: hostOutputs(t), installed: map[string]bool{"ip": true}}
	o := CollectOptions{HostNetns: selfNetns, Modules: kmod.Allow{}, NetnsDirs: []string{}, Runner: r, IPVS: fakeProbe{ok: true}, NoDocker: true}
	if err := Collect(context.Background(), o, dir); err != nil {
		t.Fatal(err)
	}
	notes, _ := os.ReadFile(filepath.Join(dir, "NOTES.txt"))
	want := "bridge-fdb.txt not collected in any namespace: bridge is not installed\n" +
		"conntrack.txt not collected in any namespace: conntrack is not installed\n" +
		"iptables-legacy-save.txt not collected in any namespace: neither is iptables-save.txt\n" +
		"iptables-save.txt not collected in any namespace: iptables-save is not installed\n" +
		"ipvsadm-stats.txt not collected in any namespace: ipvsadm is not installed\n" +
		"ipvsadm-timeout.txt not collected in any namespace: ipvsadm is not installed\n" +
		"ipvsadm.txt not collected in any namespace: ipvsadm is not installed\n" +
		"netstat.txt not collected in any namespace: cat is not installed\n" +
		"nf_conntrack-stat.txt not collected in any namespace: cat is not installed\n" +
		"snmp.txt not collected in any namespace: cat is not installed\n" +
		"ss.txt not collected in any namespace: ss is not installed\n" +
		"sysctl.txt not collected in any namespace: sysctl is not installed\n"
	if d := cmp.Diff(want, string(notes)); d != "" {
		t.Errorf("NOTES.txt (-want +got):\n%s", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "docker")); err == nil {
		t.Error("docker/ written with NoDocker")
	}
}

func TestCollectRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{}
	err := Collect(context.Background(), CollectOptions{HostNetns: selfNetns, Modules: kmod.Allow{}, Runner: r}, dir)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("err = %v", err)
	}
	if len(r.ran) != 0 {
		t.Errorf("ran commands before refusing: %q", r.ran)
	}
}

func TestCollectUniqueNames(t *testing.T) {
	c := &collector{}
	got := c.uniqueNames([]NetnsRef{
		netnsRef("host", "/proc/1/ns/net"),
		netnsRef("x", "/run/docker/netns/x"),
		netnsRef("host", "/run/netns/host"),
		netnsRef("x", "/run/netns/x"),
		netnsRef("x~2", "/run/netns/x~2"),
	})
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
	}
	if d := cmp.Diff([]string{"host", "x", "host~2", "x~2", "x~2~2"}, names); d != "" {
		t.Errorf("names (-want +got):\n%s", d)
	}
	want := []string{
		"netns host (/run/netns/host) collected as netns/host~2: the name is taken by /proc/1/ns/net",
		"netns x (/run/netns/x) collected as netns/x~2: the name is taken by /run/docker/netns/x",
		"netns x~2 (/run/netns/x~2) collected as netns/x~2~2: the name is taken by /run/netns/x",
	}
	if d := cmp.Diff(want, c.notes); d != "" {
		t.Errorf("notes (-want +got):\n%s", d)
	}
}

func TestCollectCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &fakeRunner{out: hostOutputs(t), installed: allTools}
	err := Collect(ctx, CollectOptions{HostNetns: selfNetns, Modules: kmod.Allow{}, NetnsDirs: []string{}, Runner: r, IPVS: fakeProbe{ok: true}, NoDocker: true}, t.TempDir())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
