package mesh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSystem records what Up asks of the kernel. failOn makes the first
// call whose description starts with it fail.
type fakeSystem struct {
	mu      sync.Mutex
	ipvs    bool
	failOn  string
	calls   []string
	netns   map[string]bool
	removed []string
	agent   *AgentSpec
}

var _ System = (*fakeSystem)(nil)

func newFake() *fakeSystem { return &fakeSystem{netns: map[string]bool{}} }

func (f *fakeSystem) do(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if f.failOn != "" && strings.HasPrefix(call, f.failOn) {
		return fmt.Errorf("injected failure in %s", call)
	}
	return nil
}

func (f *fakeSystem) HasIPVS() (bool, string) { return f.ipvs, "fake" }
func (f *fakeSystem) CreateNetns(path string) error {
	if err := f.do("netns " + path); err != nil {
		return err
	}
	f.mu.Lock()
	f.netns[path] = true
	f.mu.Unlock()
	return nil
}
func (f *fakeSystem) Devices(ns *NetnsSpec) error   { return f.do("devices " + ns.Path) }
func (f *fakeSystem) Veths(ns *NetnsSpec) error     { return f.do("veths " + ns.Path) }
func (f *fakeSystem) Configure(ns *NetnsSpec) error { return f.do("config " + ns.Path) }
func (f *fakeSystem) Firewall(path, rules string) error {
	return f.do("firewall " + path)
}
func (f *fakeSystem) IPVS(path string, svcs []IPVSSpec) error { return f.do("ipvs " + path) }
func (f *fakeSystem) StartAgent(a AgentSpec) (int, error) {
	if err := f.do("agent " + a.Name); err != nil {
		return 0, err
	}
	f.agent = &a
	return 4242, nil
}
func (f *fakeSystem) Remove(dir, name string) (Removed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, dir)
	n := len(f.netns)
	f.netns = map[string]bool{}
	_, err := os.Stat(dir)
	os.RemoveAll(dir)
	return Removed{Namespaces: n, Dir: err == nil}, nil
}

func (f *fakeSystem) count(prefix string) int {
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func fakeOpts(t *testing.T, f *fakeSystem) Options {
	return Options{RunDir: t.TempDir(), Binary: "/bin/true", System: f}
}

func TestUpWithFake(t *testing.T) {
	f := newFake()
	o := fakeOpts(t, f)
	cfg := Config{Name: "fk", LB: LBAuto, Services: []ServiceSpec{{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: 3}, {Name: "dns", Proto: "udp", Published: 5353, Target: 53, Replicas: 2}}}
	st, err := Up(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.LB != LBIptables {
		t.Errorf("auto on a kernel without IPVS chose %s", st.LB)
	}
	if st.AgentPID != 4242 || st.Phase != PhaseReady {
		t.Errorf("state: pid %d phase %s", st.AgentPID, st.Phase)
	}
	nns := 2 + 2*3 + 5
	for _, phase := range []string{"netns", "devices", "veths", "config"} {
		if got := f.count(phase + " "); got != nns {
			t.Errorf("%d %s calls, want %d", got, phase, nns)
		}
	}
	// Every namespace but the LAN, the client and the overlays has rules.
	if got := f.count("firewall "); got != 2+2+5 {
		t.Errorf("%d firewall loads, want 9", got)
	}
	if f.count("ipvs ") != 0 {
		t.Errorf("iptables LB programmed IPVS")
	}
	// Nothing outside the mesh's directory is ever addressed.
	dir := filepath.Join(o.RunDir, "fk")
	for _, c := range f.calls {
		if _, path, _ := strings.Cut(c, " "); path != "fk" && !strings.HasPrefix(path, dir+"/") {
			t.Errorf("call %q outside %s", c, dir)
		}
	}
	// Steps respect their dependencies: a namespace exists before its
	// devices; a VXLAN's creating namespace exists before it; a veth's
	// peer namespace has its bridges before the veth is made.
	plan, err := NewPlan(cfg.WithDefaults(), LBIptables, o.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]int{}
	for i, c := range f.calls {
		at[c] = i
	}
	before := func(a, b string) {
		ia, oka := at[a]
		ib, okb := at[b]
		if !oka || !okb || ia > ib {
			t.Errorf("%q (call %d, %v) should come before %q (call %d, %v)", a, ia, oka, b, ib, okb)
		}
	}
	for _, ns := range plan.Netns() {
		before("netns "+ns.Path, "devices "+ns.Path)
		before("devices "+ns.Path, "veths "+ns.Path)
		before("veths "+ns.Path, "config "+ns.Path)
		if ns.VXLAN != nil {
			before("netns "+ns.VXLAN.CreateIn, "devices "+ns.Path)
		}
		for _, v := range ns.Veths {
			before("devices "+v.PeerPath, "veths "+ns.Path)
		}
	}
	saved, err := Load(o.RunDir, "fk")
	if err != nil || saved.AgentPID != 4242 || saved.Phase != PhaseReady || len(saved.Services[0].Tasks) != 3 {
		t.Fatalf("saved state %+v, %v", saved, err)
	}
	if f.agent == nil || f.agent.Binary != "/bin/true" || f.agent.Dir != dir {
		t.Errorf("agent spec %+v", f.agent)
	}
	if len(f.removed) != 0 {
		t.Errorf("a successful up removed %v", f.removed)
	}

	// The name is taken now; the existing mesh must survive the attempt.
	_, err = Up(context.Background(), cfg, o)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second up: %v, want ErrExists", err)
	}
	if len(f.removed) != 0 {
		t.Errorf("a clashing up removed the existing mesh: %v", f.removed)
	}
	if _, err := Load(o.RunDir, "fk"); err != nil {
		t.Errorf("existing mesh damaged: %v", err)
	}
}

func TestUpRollsBack(t *testing.T) {
	for _, failOn := range []string{"netns ", "devices ", "veths ", "config ", "firewall ", "agent "} {
		t.Run(strings.TrimSpace(failOn), func(t *testing.T) {
			f := newFake()
			f.failOn = failOn
			o := fakeOpts(t, f)
			_, err := Up(context.Background(), Config{Name: "rb"}, o)
			if err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("Up = %v, want the injected failure", err)
			}
			if len(f.removed) != 1 || f.removed[0] != filepath.Join(o.RunDir, "rb") {
				t.Errorf("rolled back %v", f.removed)
			}
			if _, err := os.Stat(filepath.Join(o.RunDir, "rb")); !os.IsNotExist(err) {
				t.Errorf("mesh dir left behind: %v", err)
			}
		})
	}
}

func TestUpHookAndCancel(t *testing.T) {
	f := newFake()
	o := fakeOpts(t, f)
	var mu sync.Mutex
	seen := map[string]bool{}
	o.Hook = func(step string) error {
		mu.Lock()
		defer mu.Unlock()
		seen[strings.Fields(step)[0]] = true
		if strings.HasPrefix(step, "veths ") {
			return errors.New("stop here")
		}
		return nil
	}
	if _, err := Up(context.Background(), Config{Name: "hk"}, o); err == nil || !strings.Contains(err.Error(), "before veths: stop here") {
		t.Fatalf("Up = %v", err)
	}
	if !seen["netns"] || !seen["devices"] || seen["config"] || seen["agent"] || f.count("veths ") != 0 || len(f.removed) != 1 {
		t.Errorf("hooks %v, veths %d, removed %v", seen, f.count("veths "), f.removed)
	}

	f = newFake()
	o = fakeOpts(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	o.Hook = func(step string) error {
		if strings.HasPrefix(step, "config ") {
			cancel()
		}
		return nil
	}
	if _, err := Up(ctx, Config{Name: "cx"}, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Up = %v", err)
	}
	if f.count("config ") != 0 || f.count("agent ") != 0 || len(f.removed) != 1 {
		t.Errorf("after cancel: %d config calls, %d agent, removed %v", f.count("config "), f.count("agent "), f.removed)
	}
}

// TestUpParallelLimits builds with one worker: dependencies must not
// deadlock the bounded pool.
func TestUpParallelLimits(t *testing.T) {
	for _, n := range []int{1, 2, 3, 64} {
		f := newFake()
		o := fakeOpts(t, f)
		o.Parallel = n
		done := make(chan error, 1)
		go func() {
			_, err := Up(context.Background(), Config{Name: "pl", Nodes: 3, Services: []ServiceSpec{{Name: "web", Proto: "tcp", Published: 80, Target: 80, Replicas: 9}}}, o)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("parallel %d: %v", n, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("parallel %d: Up deadlocked", n)
		}
	}
}

func TestUpBadInputTouchesNothing(t *testing.T) {
	for _, cfg := range []Config{
		{Name: "Bad Name"},
		{Name: "ok", Services: []ServiceSpec{{Name: "web", Proto: "tcp", Published: 80, Target: 80, Replicas: 1}, {Name: "api", Proto: "tcp", Published: 80, Target: 81, Replicas: 1}}},
		{Name: "ok", Services: []ServiceSpec{{Name: "web", Proto: "tcp", Published: 80, Target: 80, Replicas: 300}}},
		{Name: "ok", LB: LBIPVS},
	} {
		f := newFake()
		o := fakeOpts(t, f)
		if _, err := Up(context.Background(), cfg, o); err == nil {
			t.Errorf("Up(%+v) succeeded", cfg)
		}
		if len(f.calls) != 0 || len(f.removed) != 0 {
			t.Errorf("Up(%+v) touched the kernel: %v %v", cfg, f.calls, f.removed)
		}
		if ents, _ := os.ReadDir(o.RunDir); len(ents) != 0 {
			t.Errorf("Up(%+v) left %v", cfg, ents)
		}
	}
}

func TestResolveLB(t *testing.T) {
	with, without := &fakeSystem{ipvs: true}, &fakeSystem{}
	for _, tc := range []struct {
		lb   string
		sys  System
		want string
		err  bool
	}{
		{LBAuto, with, LBIPVS, false},
		{LBAuto, without, LBIptables, false},
		{LBIPVS, with, LBIPVS, false},
		{LBIPVS, without, "", true},
		{LBIptables, with, LBIptables, false},
	} {
		got, err := ResolveLB(tc.lb, tc.sys)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ResolveLB(%s, ipvs=%v) = %q, %v", tc.lb, tc.sys.(*fakeSystem).ipvs, got, err)
		}
	}
}
