package mesh_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func statusJSON(t *testing.T, name string) (*mesh.State, int) {
	t.Helper()
	out, errs, code := meshtest.Run(t, "mesh", "status", "--name", name, "-o", "json")
	var st mesh.State
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("mesh status -o json: %v\n%s%s", err, out, errs)
	}
	return &st, code
}

// snapshot is the state of the machine outside the mesh that a mesh must
// leave exactly as it found it.
type snapshot struct {
	Netns   []string          // `ip netns list`, without other test and bench processes' mt<N>/mb<N> entries
	Links   []string          // `ip -o link` of the root netns
	Rules   []string          // root `iptables-save`, comments and counters stripped
	Sysctls map[string]string // root netns sysctls the mesh writes in its own netns
	Dir     bool              // /run/meshtrace/NAME exists
	Mounts  []string          // mount points under /run/meshtrace/NAME
	Agents  []string          // processes running `mesh agent --name NAME`
}

var (
	otherTests = regexp.MustCompile(`^m[tb]\d+`) // other test (mt) and benchmark (mb) processes
	counters   = regexp.MustCompile(`\[\d+:\d+\]`)
)

func takeSnapshot(t *testing.T, name string) snapshot {
	t.Helper()
	var s snapshot
	for _, l := range lines(t, "ip", "netns", "list") {
		if !otherTests.MatchString(l) || strings.HasPrefix(l, name) {
			s.Netns = append(s.Netns, l)
		}
	}
	s.Links = lines(t, "ip", "-o", "link")
	for _, l := range lines(t, "iptables-save") {
		if !strings.HasPrefix(l, "#") {
			s.Rules = append(s.Rules, counters.ReplaceAllString(l, "[]"))
		}
	}
	s.Sysctls = map[string]string{}
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet", "net/ipv4/conf/default/route_localnet",
		"net/ipv4/conf/all/rp_filter", "net/bridge/bridge-nf-call-iptables"} {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err == nil {
			s.Sysctls[k] = strings.TrimSpace(string(b))
		}
	}
	dir := filepath.Join(mesh.DefaultRunDir, name)
	_, err := os.Stat(dir)
	s.Dir = err == nil
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 4 && strings.HasPrefix(fs[4], dir+"/") {
			s.Mounts = append(s.Mounts, fs[4])
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if i := slices.Index(args, "agent"); i > 0 && args[i-1] == "mesh" && slices.Contains(args, name) && isAlive(p) {
			s.Agents = append(s.Agents, strings.Join(args, " "))
		}
	}
	return s
}

func isAlive(cmdlinePath string) bool {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(cmdlinePath), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func lines(t *testing.T, name string, args ...string) []string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	var ls []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimRight(l, " "); l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// assertRestored fails when the machine differs from before. The kernel
// frees namespaces asynchronously, but nothing compared here depends on
// that: the root netns never had a link of the mesh.
func assertRestored(t *testing.T, name string, before snapshot) {
	t.Helper()
	var after snapshot
	for range 50 { // agents killed by down are gone before down returns; allow for slow reaping
		after = takeSnapshot(t, name)
		if len(after.Agents) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("the machine differs after mesh %s went down (-before +after):\n%s", name, d)
	}
}
