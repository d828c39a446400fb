package fault

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/mesh"
)

// fakeMesh plans a 2-node mesh (web tcp 8080->80 x2, dns udp 5353->53 x2)
// in a temporary run directory, saves its state as ready and returns a
// fake kernel holding what the mesh would have programmed.
func fakeMesh(t *testing.T, lb string, services ...string) (string, *mesh.State, *fakeMachine) {
	t.Helper()
	if len(services) == 0 {
		services = []string{"web:8080:80x2", "dns:5353:53/udpx2"}
	}
	cfg := mesh.Config{Name: "brk", Nodes: 2, LB: lb}
	for _, s := range services {
		sp, err := mesh.ParseService(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Services = append(cfg.Services, sp)
	}
	runDir := t.TempDir()
	p, err := mesh.NewPlan(cfg, lb, runDir)
	if err != nil {
		t.Fatal(err)
	}
	st := p.State()
	st.Phase = mesh.PhaseReady
	if err := st.Save(); err == nil {
		t.Fatal("saving into a missing directory worked")
	}
	if err := mkdir(p.Dir); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	m := newFakeMachine(p)
	m.flows.answer = "dns.2"
	return runDir, st, m
}

// wantNetns is where doctor names a fault kind's namespace in mesh st.
func wantNetns(st *mesh.State, k Kind, f *Fault) string {
	switch k.Where {
	case WhereTask:
		t, _, _ := st.Task(f.Task)
		return filepath.Base(t.Netns)
	case WhereOverlay:
		return "1-" + st.OverlayID
	}
	return k.Where
}

// Every fault, alone, changes the machine and repair puts back exactly
// what was there; faults of the other load balancer are refused.
func TestBreakRepairExact(t *testing.T) {
	for _, lb := range []string{mesh.LBIptables, mesh.LBIPVS} {
		for _, kind := range Kinds() {
			t.Run(lb+"/"+kind.Name, func(t *testing.T) {
				runDir, st, k := fakeMesh(t, lb)
				o := Options{RunDir: runDir, Kernel: k.kernel()}
				before := k.snapshot()
				f, err := Break("brk", Request{Fault: kind.Name, Node: "node0"}, o)
				if kind.LB != "" && kind.LB != lb {
					if err == nil || !strings.Contains(err.Error(), "needs --lb "+kind.LB) {
						t.Fatalf("want a --lb %s error, got %v", kind.LB, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if k.snapshot() == before {
					t.Fatalf("%s changed nothing: %+v", kind.Name, f)
				}
				if f.Code != kind.Code || f.Netns != wantNetns(st, kind, f) || f.Detail == "" || len(f.Steps) == 0 {
					t.Errorf("fault record: %+v", f)
				}
				var b bytes.Buffer
				Write(&b, "brk", f)
				if !strings.Contains(b.String(), kind.Code) {
					t.Errorf("WriteFault: %s", b.String())
				}
				// Breaking again either refuses or stacks; repair undoes all.
				Break("brk", Request{Fault: kind.Name, Node: "node0"}, o)
				done, err := Repair("brk", o)
				if err != nil || len(done) == 0 || done[len(done)-1].ID != f.ID {
					t.Fatalf("repair: %v, %+v", err, done)
				}
				if got := k.snapshot(); got != before {
					t.Errorf("repair is not exact:\n--- before\n%s\n--- after\n%s", before, got)
				}
				if fs, err := Faults(runDir, "brk"); err != nil || len(fs) != 0 {
					t.Errorf("faults left after repair: %v %+v", err, fs)
				}
			})
		}
	}
}

// All faults on top of each other (those that still apply), then one
// repair: newest first, everything back.
func TestBreakStackedRepair(t *testing.T) {
	for _, lb := range []string{mesh.LBIptables, mesh.LBIPVS} {
		runDir, _, k := fakeMesh(t, lb)
		o := Options{RunDir: runDir, Kernel: k.kernel()}
		before := k.snapshot()
		n := 0
		for _, kind := range Kinds() {
			for _, node := range []string{"node0", "node1"} {
				if _, err := Break("brk", Request{Fault: kind.Name, Node: node}, o); err == nil {
					n++
				}
			}
		}
		if n < len(Kinds()) {
			t.Errorf("%s: only %d faults applied", lb, n)
		}
		done, err := Repair("brk", o)
		if err != nil || len(done) != n {
			t.Fatalf("%s: repaired %d of %d: %v", lb, len(done), n, err)
		}
		if got := k.snapshot(); got != before {
			t.Errorf("%s: stacked repair is not exact:\n--- before\n%s\n--- after\n%s", lb, before, got)
		}
	}
}

// A fault that fails half way leaves nothing behind and no record.
func TestBreakRollback(t *testing.T) {
	runDir, _, k := fakeMesh(t, mesh.LBIptables)
	o := Options{RunDir: runDir, Kernel: k.kernel()}
	before := k.snapshot()
	k.tasks.failTask = "web.2" // hang-task hangs web.1, then fails on web.2
	if _, err := Break("brk", Request{Fault: "hang-task"}, o); err == nil || !strings.Contains(err.Error(), "web.2") {
		t.Fatalf("want a failure on web.2, got %v", err)
	}
	k.tasks.failTask = ""
	k.fw.failRestore = k.fw.restores + 1 // stale-conntrack sends, then fails to change the rules
	if _, err := Break("brk", Request{Fault: "stale-conntrack"}, o); err == nil {
		t.Fatal("want a failure")
	}
	if got := k.snapshot(); got != before {
		t.Errorf("rollback is not exact:\n--- before\n%s\n--- after\n%s", before, got)
	}
	if fs, _ := Faults(runDir, "brk"); len(fs) != 0 {
		t.Errorf("a failed fault was recorded: %+v", fs)
	}
	if done, err := Repair("brk", o); err != nil || len(done) != 0 {
		t.Errorf("repair with nothing to do: %v %+v", err, done)
	}
}

func TestBreakErrors(t *testing.T) {
	runDir, _, k := fakeMesh(t, mesh.LBIptables, "web:8080:80x2")
	o := Options{RunDir: runDir, Kernel: k.kernel()}
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Fault: "nope"}, `unknown fault "nope"`},
		{Request{Fault: "drop-mark", Node: "node7"}, `no node "node7" (nodes: node0, node1)`},
		{Request{Fault: "drop-mark", Service: "api"}, `no service "api" (services: web)`},
		{Request{Fault: "stale-conntrack"}, "needs a published udp service"},
		{Request{Fault: "weight-zero"}, "needs --lb ipvs"},
	} {
		if _, err := Break("brk", tc.req, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.req, err, tc.want)
		}
	}
	if _, err := Break("nomesh", Request{Fault: "drop-mark"}, o); err == nil || !strings.Contains(err.Error(), "no such mesh") {
		t.Errorf("missing mesh: %v", err)
	}
	// A dnsrr service has no published port: faults that need one refuse
	// it, those that do not take it.
	runDir, _, k = fakeMesh(t, mesh.LBIptables, "db:dnsrr:5432x2")
	o = Options{RunDir: runDir, Kernel: k.kernel()}
	if _, err := Break("brk", Request{Fault: "drop-mark"}, o); err == nil || !strings.Contains(err.Error(), "needs a published service") {
		t.Errorf("drop-mark without a published service: %v", err)
	}
	if _, err := Break("brk", Request{Fault: "stop-task", Service: "db"}, o); err == nil || !strings.Contains(err.Error(), "service db is dnsrr") {
		t.Errorf("stop-task on a dnsrr service: %v", err)
	}
	if f, err := Break("brk", Request{Fault: "dns-no-listener"}, o); err != nil || f.Service != "db" {
		t.Errorf("dns-no-listener on a dnsrr service: %+v %v", f, err)
	}
	// One task per service and node 1 has none: task faults say so.
	runDir, _, k = fakeMesh(t, mesh.LBIptables, "web:8080:80x1")
	o = Options{RunDir: runDir, Kernel: k.kernel()}
	if _, err := Break("brk", Request{Fault: "stop-task", Node: "node1"}, o); err == nil || !strings.Contains(err.Error(), "no task on node1") {
		t.Errorf("stop-task without a task: %v", err)
	}
	if _, err := Break("brk", Request{Fault: "no-fdb", Node: "node0"}, o); err == nil || !strings.Contains(err.Error(), "no task on a node other than node0") {
		t.Errorf("no-fdb without a remote task: %v", err)
	}
}

// edit's inverse puts rules deleted out of order back where they were.
func TestEditInverse(t *testing.T) {
	rules := "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j A\n-A PREROUTING -j B\n-A PREROUTING -j C\n-A PREROUTING -j D\n-A PREROUTING -j E\nCOMMIT\n"
	fw := &fakeFirewall{tables: map[string]map[string]*fakeTable{"ns": parseRestore(rules)}}
	before, _ := fw.SaveRules("ns", "nat")
	k := &Kernel{Firewall: fw}
	p := &planner{k: k, f: &Fault{}, st: &mesh.State{}}
	tb, err := p.table("ns", "nat")
	if err != nil {
		t.Fatal(err)
	}
	e := edit{chain: tb.Chain("PREROUTING"), del: []int{3, 1}, at: 1, ins: []string{"-j X", "-j Y"}}
	if err := p.rules("ns", "nat", nil, e); err != nil {
		t.Fatal(err)
	}
	if got, _ := fw.SaveRules("ns", "nat"); !strings.Contains(got, "-j A\n-A PREROUTING -j X\n-A PREROUTING -j Y\n-A PREROUTING -j C\n-A PREROUTING -j E\n") {
		t.Fatalf("after the edit:\n%s", got)
	}
	if err := undoSteps(k, p.f.Steps); err != nil {
		t.Fatal(err)
	}
	if got, _ := fw.SaveRules("ns", "nat"); got != before {
		t.Errorf("after the undo:\n%s\nwant\n%s", got, before)
	}
}

func TestFaultList(t *testing.T) {
	var b bytes.Buffer
	if err := WriteList(&b); err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds() {
		if k.What == "" || k.Code == "" || k.Symptom == "" || k.plan == nil {
			t.Errorf("fault %s is not fully described", k.Name)
		}
		if !strings.Contains(b.String(), k.Name) || !strings.Contains(b.String(), k.Code) {
			t.Errorf("--list lacks %s / %s", k.Name, k.Code)
		}
	}
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o755) }

// TestFaultsOffline: a bundle carries everything doctor reads but a live
// probe (issue 7: findings work offline on bundles, for the checks that
// need no probe), so every fault a probe does not need is one the doctor
// matrix must see in a bundle too (TestDoctorMatrix fails when the
// catalogue's Offline is not what the bundle shows).
func TestFaultsOffline(t *testing.T) {
	for _, k := range Kinds() {
		if k.Offline == k.Probe {
			t.Errorf("fault %s: offline %v, probe %v: want offline exactly when no probe is needed", k.Name, k.Offline, k.Probe)
		}
	}
}
