package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestState reads each fake tree the way the host is read and checks every
// way a module can be there or not.
func TestState(t *testing.T) {
	for _, tc := range []struct {
		tree, module string
		want         State
		how          string // a part of how
	}{
		// /proc/modules decides for a loadable module, in each of its states.
		{"debian", "ip_vs", Loaded, "Live in /proc/modules"},
		{"debian", "ip_vs_rr", Loaded, "Live in /proc/modules"},
		{"debian", "vboxdrv", Loaded, "Live in /proc/modules"}, // with taint flags
		{"debian", "nf_tables", Loading, "Loading in /proc/modules"},
		{"debian", "inet_diag", Unloading, "Unloading in /proc/modules"},
		// Module names: the kernel treats - and _ alike.
		{"debian", "ip-vs", Loaded, "Live in /proc/modules"},
		// Not (yet) in /proc/modules: sysfs's initstate.
		{"debian", "xt_conntrack", Loaded, "/sys/module/xt_conntrack/initstate: live"},
		{"debian", "nft_compat", Loading, "/sys/module/nft_compat/initstate: coming"},
		{"debian", "br_netfilter", Unloading, "/sys/module/br_netfilter/initstate: going"},
		// Built in: a sysfs directory without initstate, or modules.builtin.
		{"debian", "tcp_cubic", BuiltIn, "/sys/module/tcp_cubic without initstate"},
		{"debian", "af_packet", BuiltIn, "modules.builtin"},
		// Neither: asking would load it.
		{"debian", "nf_conntrack_netlink", Absent, "not in /proc/modules, not built in"},
		{"debian", "nf-conntrack-netlink", Absent, "not in /proc/modules, not built in"},
		{"debian", "tcp_diag", Absent, "not in /proc/modules, not built in"},
		// A kernel without loadable modules cannot load one.
		{"nomodules", "nf_conntrack", BuiltIn, "/sys/module/nf_conntrack without initstate"},
		{"nomodules", "nf_tables", NoLoader, "no /proc/modules"},
		{"nomodules", "ip_vs", NoLoader, "no /proc/modules"},
		// IPVS built in where modules.builtin is missing: /proc/net/ip_vs.
		{"ipvsbuiltin", "ip_vs", BuiltIn, "/proc/net/ip_vs"},
		{"ipvsbuiltin", "nf_tables", Absent, "not in /proc/modules, not built in"},
	} {
		t.Run(tc.tree+"/"+tc.module, func(t *testing.T) {
			got, how := FS{Root: filepath.Join("testdata", tc.tree)}.State(tc.module)
			if got != tc.want || !strings.Contains(how, tc.how) {
				t.Errorf("State(%s) = %v %q, want %v with %q", tc.module, got, how, tc.want, tc.how)
			}
			ok, pHow := FS{Root: filepath.Join("testdata", tc.tree)}.Present(tc.module)
			if ok != (tc.want == Loaded || tc.want == BuiltIn || tc.want == NoLoader) || pHow != how {
				t.Errorf("Present(%s) = %v %q, want it to follow State %v %q", tc.module, ok, pHow, got, how)
			}
		})
	}
}

// TestStateUnknown: where the module state cannot be read, nothing counts
// as there (a read that might load a module is skipped).
func TestStateUnknown(t *testing.T) {
	empty := t.TempDir()
	if s, how := (FS{Root: empty}).State("ip_vs"); s != Unknown || !strings.Contains(how, "no /proc") {
		t.Errorf("no /proc at all: %v %q, want unknown", s, how)
	}
	bad := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bad, "proc", "modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, how := FS{Root: bad}.State("ip_vs")
	if s != Unknown || !strings.Contains(how, "/proc/modules") {
		t.Errorf("unreadable /proc/modules: %v %q, want unknown naming the file", s, how)
	}
	if ok, _ := (FS{Root: bad}).Present("ip_vs"); ok {
		t.Error("an unknown state counts as present")
	}
}

// TestParseProcModules reads the fixture's lines: name and state of each.
func TestParseProcModules(t *testing.T) {
	b, err := os.ReadFile("testdata/debian/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	m := parseProcModules(b)
	want := map[string]string{"ip_vs_rr": "Live", "ip_vs": "Live", "nf_tables": "Loading", "inet_diag": "Unloading", "vboxdrv": "Live"}
	for name, st := range want {
		if m[name] != st {
			t.Errorf("%s: state %q, want %q", name, m[name], st)
		}
	}
	if len(m) != 12 {
		t.Errorf("%d modules, want the fixture's 12: %v", len(m), m)
	}
}

func FuzzParseProcModules(f *testing.F) {
	b, err := os.ReadFile("testdata/debian/proc/modules")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("x 1 - - Live\n\n  \nip_vs"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, st := range parseProcModules(data) {
			if name == "" || strings.ContainsAny(name, " \t\n-") {
				t.Fatalf("module name %q", name)
			}
			if st != "Live" && st != "Loading" && st != "Unloading" && st != "" {
				t.Fatalf("%s: state %q", name, st)
			}
		}
	})
}

// countGate answers from a map and counts the questions.
type countGate struct {
	mu    sync.Mutex
	there map[string]bool
	asked map[string]int
}

var _ Gate = (*countGate)(nil)

func (g *countGate) Present(m string) (bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.asked == nil {
		g.asked = map[string]int{}
	}
	g.asked[m]++
	if g.there[m] {
		return true, "loaded (fake)"
	}
	return false, "not loaded (fake)"
}

func TestMemo(t *testing.T) {
	g := &countGate{there: map[string]bool{"ip_vs": true}}
	m := Memo(g)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, name := range []string{"ip_vs", "nf_tables", "ip-vs"} {
				m.Present(name)
			}
		}()
	}
	wg.Wait()
	if g.asked["ip_vs"] != 1 || g.asked["nf_tables"] != 1 || len(g.asked) != 2 {
		t.Errorf("asked %v, want each module once (ip-vs is ip_vs)", g.asked)
	}
	if ok, how := m.Present("nf_tables"); ok || how != "not loaded (fake)" {
		t.Errorf("memo answers %v %q, want the gate's", ok, how)
	}
}

func TestNeedCheck(t *testing.T) {
	g := &countGate{there: map[string]bool{"nf_conntrack": true, "nfnetlink": true}}
	err := NeedConntrack.Check(g)
	var ae *AbsentError
	if !errors.As(err, &ae) || ae.Module != "nf_conntrack_netlink" || ae.What != NeedConntrack.What {
		t.Fatalf("Check = %v, want nf_conntrack_netlink absent", err)
	}
	msg := err.Error()
	for _, part := range []string{"conntrack table not read", "nf_conntrack_netlink is not loaded (fake)", "--allow-module-load"} {
		if !strings.Contains(msg, part) {
			t.Errorf("message %q lacks %q", msg, part)
		}
	}
	if err := NeedConntrack.Check(Allow{}); err != nil {
		t.Errorf("Allow: %v", err)
	}
	// The first missing module is named, and none after it is asked.
	g = &countGate{}
	if err := NeedSockets.Check(g); !errors.As(err, &ae) || ae.Module != "inet_diag" || g.asked["tcp_diag"] != 0 {
		t.Errorf("Check = %v (asked %v), want inet_diag named first", err, g.asked)
	}
}

// TestIPVS: the one IPVS check never looks the family up while the gate says
// ip_vs is missing.
func TestIPVS(t *testing.T) {
	lookups := 0
	found := func(ok bool, err error) func() (bool, error) {
		return func() (bool, error) { lookups++; return ok, err }
	}
	ok, reason, err := IPVS(&countGate{}, found(true, nil))
	if ok || err != nil || lookups != 0 || reason != "ip_vs is not loaded (fake)" {
		t.Errorf("gate absent: %v %q %v after %d lookups, want no lookup", ok, reason, err, lookups)
	}
	there := &countGate{there: map[string]bool{"ip_vs": true}}
	if ok, reason, err = IPVS(there, found(false, nil)); ok || err != nil || reason != FamilyNotFound {
		t.Errorf("no family: %v %q %v", ok, reason, err)
	}
	boom := errors.New("boom")
	if _, _, err = IPVS(there, found(false, boom)); !errors.Is(err, boom) {
		t.Errorf("lookup error: %v", err)
	}
	if ok, reason, err = IPVS(there, found(true, nil)); !ok || reason != "" || err != nil || lookups != 3 {
		t.Errorf("family there: %v %q %v after %d lookups", ok, reason, err, lookups)
	}
}
