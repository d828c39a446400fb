package dockerns

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

func build(t *testing.T, o Options) *World {
	t.Helper()
	testutil.NeedRoot(t)
	o.Prefix = testutil.Prefix()
	w, err := Build(o)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(func() { closeAndCheck(t, w) })
	return w
}

func closeAndCheck(t *testing.T, w *World) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	left, err := Leftovers(w.Base)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestBuildLayout(t *testing.T) {
	w := build(t, Options{Tasks: 3, EastWest: true})
	ents, err := os.ReadDir(w.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := []string{w.Sandbox, w.Overlay, w.UserOverlay}
	for _, tk := range w.Tasks {
		want = append(want, tk.Name)
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("netns dir (-want +got):\n%s", diff)
	}
	if w.Sandbox != "ingress_sbox" || !strings.HasPrefix(w.Overlay, "1-") || len(w.Overlay) != 12 {
		t.Errorf("names: sandbox %q overlay %q", w.Sandbox, w.Overlay)
	}
	for _, tk := range w.Tasks {
		if len(tk.Name) != 12 {
			t.Errorf("task name %q is not 12 hex chars", tk.Name)
		}
		// lo, eth0 (ingress), eth1 (gwbridge), eth2 (user overlay)
		if n := len(w.Expect[tk.Name]); n != 4 {
			t.Errorf("task %s: %d links built, want 4", tk.Name, n)
		}
	}
	// host: lo, eth0 + underlay0, docker_gwbridge, one veth per task + sandbox
	if n := len(w.Expect["host"]); n != 4+4 {
		t.Errorf("host: %d links built, want 8", n)
	}
	if len(w.Rules[w.Tasks[0].Name]) != 2 || len(w.Rules[w.Tasks[1].Name]) != 1 {
		t.Errorf("east-west rules: task0 %d loads, task1 %d", len(w.Rules[w.Tasks[0].Name]), len(w.Rules[w.Tasks[1].Name]))
	}
	if _, err := os.Stat(filepath.Join(w.Base, "host")); err != nil {
		t.Errorf("host netns file: %v", err)
	}
}

func TestBuildDocker112(t *testing.T) {
	w := build(t, Options{Tasks: 1, Variant: dockerrules.Docker112,
		Ports: []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}}})
	if len(w.Sandbox) != 12 || w.Sandbox == "ingress_sbox" {
		t.Errorf("docker 1.12 sandbox name %q, want 12 hex chars", w.Sandbox)
	}
	if !strings.Contains(strings.Join(w.Rules[w.Sandbox], ""), "REDIRECT --to-ports 80") {
		t.Errorf("sandbox rules lack the REDIRECT: %v", w.Rules[w.Sandbox])
	}
}

// A build that fails half way (a rule iptables-restore rejects, after the
// host, overlay and sandbox were made) leaves nothing behind.
func TestBuildFailureTearsDown(t *testing.T) {
	testutil.NeedRoot(t)
	o := Options{Prefix: testutil.Prefix(), Tasks: 2, Ports: []dockerrules.Port{{Proto: "nosuchproto", Published: 1, Target: 2}}}
	w, err := Build(o)
	if err == nil {
		w.Close()
		t.Fatal("build with a bad protocol succeeded")
	}
	if !strings.Contains(err.Error(), "iptables-restore") {
		t.Errorf("error does not name the failing step: %v", err)
	}
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "meshtrace-"+o.Prefix+"-*"))
	if len(matches) != 0 {
		t.Errorf("left behind: %v", matches)
	}
}

func TestOptionsDefaults(t *testing.T) {
	if err := (&Options{}).defaults(); err == nil {
		t.Error("no prefix accepted")
	}
	if err := (&Options{Prefix: "x", Tasks: 241}).defaults(); err == nil {
		t.Error("241 tasks accepted")
	}
	o := Options{Prefix: "x"}
	if err := o.defaults(); err != nil || o.Tasks != 2 || len(o.Ports) != 1 {
		t.Errorf("defaults: %+v %v", o, err)
	}
}

func TestBuildServices(t *testing.T) {
	w := build(t, Options{Services: []ServiceSpec{
		{Name: "web", Ports: []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}}, Replicas: 2},
		{Name: "dns", Ports: []dockerrules.Port{{Proto: "udp", Published: 5353, Target: 53}}, Replicas: 1},
	}, EastWest: true})
	if len(w.Tasks) != 3 || len(w.Services) != 2 {
		t.Fatalf("%d tasks, %d services", len(w.Tasks), len(w.Services))
	}
	sbox := strings.Join(w.Rules[w.Sandbox], "")
	for _, want := range []string{"--dport 8080 -j MARK --set-xmark 0x100/", "--dport 5353 -j MARK --set-xmark 0x101/"} {
		if !strings.Contains(sbox, want) {
			t.Errorf("sandbox rules lack %q:\n%s", want, sbox)
		}
	}
	dns := w.Tasks[2]
	if dns.Service != "dns" || !strings.Contains(strings.Join(w.Rules[dns.Name], ""), "--dport 5353 -j REDIRECT --to-ports 53") {
		t.Errorf("dns task %+v rules %v", dns, w.Rules[dns.Name])
	}
	if got := len(w.EastWestSvc.Backends); got != 2 {
		t.Errorf("east-west backends %v, want web's 2 tasks", w.EastWestSvc.Backends)
	}
	host := strings.Join(w.Rules["host"], "")
	if !strings.Contains(host, "--dport 5353 -j DNAT") || !strings.Contains(host, "--dport 8080 -j DNAT") {
		t.Errorf("host rules lack a DNAT:\n%s", host)
	}
}

func TestServicesValidation(t *testing.T) {
	p := []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}}
	for _, o := range []Options{
		{Prefix: "x", Services: []ServiceSpec{{Name: "a", Ports: p, Replicas: 1}, {Name: "b", Ports: p, Replicas: 1}}},
		{Prefix: "x", Services: []ServiceSpec{{Name: "a", Ports: p}}},
		{Prefix: "x", Services: []ServiceSpec{{Name: "a", Ports: p, Replicas: 239}, {Name: "b", Ports: []dockerrules.Port{{Proto: "udp", Published: 1, Target: 1}}, Replicas: 1}}},
	} {
		if err := o.defaults(); err == nil {
			t.Errorf("accepted %+v", o.Services)
		}
	}
}
