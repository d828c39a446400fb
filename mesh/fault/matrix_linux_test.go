package fault_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/mesh/fault"
)

// matrixEnv is the mesh the matrix breaks: 2 nodes, web (tcp 8080 -> 80,
// web.1 on node0, web.2 on node1) and dns (udp 5353 -> 53, dns.1 on node0,
// dns.2 on node1), load balanced by the iptables emulation.
type matrixEnv struct {
	t    *testing.T
	name string
	st   *mesh.State
	web  mesh.ServiceState
	dns  mesh.ServiceState
}

// symptomTimeout is how long a request may take before it counts as
// stalled: healthy ones here take milliseconds.
const symptomTimeout = 1500 * time.Millisecond

func (e *matrixEnv) node(i int) netip.Addr { return e.st.Nodes[i].IP }

// req makes n requests at once from the client to a node's published port.
func (e *matrixEnv) req(n, node int, s mesh.ServiceState, path string) []outcome {
	return ask(e.st, n, s.Proto, netip.AddrPortFrom(e.node(node), uint16(s.Published)), path, symptomTimeout)
}

// matrixCase is one fault, where doctor must find it and what a user sees.
type matrixCase struct {
	fault string
	netns func(e *matrixEnv) string // where the finding must be
	port  string                    // its port, "" for none
	// symptom reproduces what the user sees; nil error: reproduced. It
	// returns a few words saying what it saw.
	symptom func(e *matrixEnv, f *fault.Fault) (string, error)
}

func inHost(*matrixEnv) string    { return "host" }
func inSandbox(*matrixEnv) string { return "ingress_sbox" }
func inOverlay(e *matrixEnv) string {
	return "1-" + e.st.OverlayID
}

// inWebTask is web.1's netns, the web task on node0.
func inWebTask(e *matrixEnv) string { return filepath.Base(e.web.Tasks[0].Netns) }

// webFails: n requests from the client to node0's web port, fails of
// them fail with kind, the rest answered by allowed tasks.
func webFails(n, fails int, kind string, allowed ...string) func(*matrixEnv, *fault.Fault) (string, error) {
	return func(e *matrixEnv, _ *fault.Fault) (string, error) {
		outs := e.req(n, 0, e.web, "/")
		return summary(outs), expectMix(outs, fails, kind, allowed...)
	}
}

var matrixCases = []matrixCase{
	{"drop-mark", inSandbox, "tcp/8080", webFails(2, 2, "refused")},
	{"no-backends", inSandbox, "tcp/8080", webFails(2, 2, "refused")},
	{"no-lb", inSandbox, "", func(e *matrixEnv, _ *fault.Fault) (string, error) {
		web, dns := e.req(2, 0, e.web, "/"), e.req(2, 0, e.dns, "")
		s := "web " + summary(web) + ", dns " + summary(dns)
		if err := expectMix(web, 2, "refused"); err != nil {
			return s, err
		}
		return s, expectMix(dns, 2, "refused")
	}},
	{"stale-backend", inSandbox, "tcp/8080", webFails(3, 1, "timeout", "web.1", "web.2")},
	{"wrong-redirect", inWebTask, "tcp/8080", webFails(2, 1, "timeout", "web.2")},
	{"no-dnat", inHost, "tcp/8080", webFails(2, 2, "refused")},
	{"dnat-unowned", inHost, "tcp/8080", webFails(2, 2, "timeout")},
	{"dnat-port", inHost, "tcp/8080", webFails(2, 2, "refused")},
	{"no-snat", inSandbox, "", webFails(2, 2, "timeout")},
	{"mtu", inWebTask, "", func(e *matrixEnv, _ *fault.Fault) (string, error) {
		// Through node1, web.1's answers cross VXLAN: small ones pass,
		// large ones stall; web.2 (local to node1) answers both.
		small := e.req(2, 1, e.web, "/")
		if err := expectMix(small, 0, "", "web.1", "web.2"); err != nil {
			return summary(small), fmt.Errorf("small answers: %w", err)
		}
		large := e.req(2, 1, e.web, "/?size=200000")
		return "small " + summary(small) + ", large " + summary(large), expectMix(large, 1, "timeout", "web.2")
	}},
	{"no-forward", inHost, "", webFails(2, 2, "timeout")},
	{"forward-drop", inHost, "tcp/8080", func(e *matrixEnv, _ *fault.Fault) (string, error) {
		web, dns := e.req(2, 0, e.web, "/"), e.req(2, 0, e.dns, "")
		s := "web " + summary(web) + ", dns " + summary(dns)
		if err := expectMix(dns, 0, "", "dns.1", "dns.2"); err != nil {
			return s, fmt.Errorf("dns, whose accept is intact: %w", err)
		}
		return s, expectMix(web, 2, "timeout")
	}},
	{"task-drop", inWebTask, "tcp/8080", webFails(2, 1, "timeout", "web.2")},
	{"block-vxlan", inHost, "", webFails(2, 1, "timeout", "web.1")},
	{"stop-task", inWebTask, "tcp/8080", webFails(2, 1, "refused", "web.2")},
	{"hang-task", inHost, "tcp/8080", webFails(2, 2, "timeout")},
	{"no-fdb", inOverlay, "tcp/8080", webFails(2, 1, "timeout", "web.1")},
	{"stale-conntrack", inSandbox, "udp/5353", func(e *matrixEnv, f *fault.Fault) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), symptomTimeout)
		defer cancel()
		a, err := probe.Do(ctx, probe.Request{Netns: e.st.Client.Netns, Proto: "udp",
			To: netip.AddrPortFrom(e.node(0), uint16(e.dns.Published)), SPort: uint16(f.ClientPort)})
		if err != nil {
			return "", fmt.Errorf("client port %d: %w", f.ClientPort, err)
		}
		other := "dns.1"
		if f.Task == "dns.1" {
			other = "dns.2"
		}
		fresh := e.req(2, 0, e.dns, "")
		s := fmt.Sprintf("port %d -> %s, new ports -> %s", f.ClientPort, a.First(), summary(fresh))
		if a.First() != f.Task {
			return s, fmt.Errorf("the old flow reached %s, want the removed task %s", a.First(), f.Task)
		}
		return s, expectMix(fresh, 0, "", other)
	}},
	{"rp-filter", inSandbox, "", webFails(2, 0, "", "web.1", "web.2")},
}

// matrixRow is one line of the printed matrix.
type matrixRow struct {
	fault, code, where string
	detected, repaired bool
	offline, offlineOK bool
	symptom            string
	problems           []string
}

// TestDoctorMatrix injects every fault the mesh supports here, one at a
// time into one mesh, and checks that doctor reports exactly the finding
// for it at the right place, that the user-visible symptom is there, that
// repair puts everything back exactly, and what an offline bundle shows.
func TestDoctorMatrix(t *testing.T) {
	testutil.NeedRoot(t)
	start := time.Now()
	name := meshtest.Name(t)
	meshtest.Up(t, name, "--nodes", "2", "--service", "web:8080:80x2", "--service", "dns:5353:53/udpx2", "--lb", "iptables")
	st, err := mesh.Load("", name)
	if err != nil {
		t.Fatal(err)
	}
	e := &matrixEnv{t: t, name: name, st: st, web: st.Services[0], dns: st.Services[1]}
	if e.web.Tasks[0].Node != "node0" || e.dns.Proto != "udp" {
		t.Fatalf("unexpected layout: %+v", st.Services)
	}
	base := takeFingerprint(t, st)
	falsePos := 0
	healthy := func(when string) {
		t.Helper()
		for _, probe := range []bool{false, true} {
			if extra := serious(doctorLive(t, name, probe)); len(extra) > 0 {
				falsePos += len(extra)
				t.Errorf("%s: doctor (probe %v) has findings above info: %v", when, probe, extra)
			}
		}
		for _, s := range []mesh.ServiceState{e.web, e.dns} {
			outs := e.req(2, 0, s, "")
			if err := expectMix(outs, 0, "", s.Tasks[0].Name, s.Tasks[1].Name); err != nil || outs[0].task == outs[1].task {
				t.Errorf("%s: %s from the client: %v %v, want every task", when, s.Name, summary(outs), err)
			}
		}
	}
	healthy("healthy mesh")
	if extra := serious(doctorOffline(t, name, t.TempDir())); len(extra) > 0 {
		falsePos += len(extra)
		t.Errorf("healthy mesh's bundle: %v", extra)
	}

	var rows []matrixRow
	defer func() { printMatrix(rows, falsePos, time.Since(start)) }()
	kinds := map[string]fault.Kind{}
	for _, k := range fault.Kinds() {
		kinds[k.Name] = k
	}
	for _, c := range matrixCases {
		k, ok := kinds[c.fault]
		if !ok {
			t.Fatalf("matrix case %s is not a fault", c.fault)
		}
		if k.Pending {
			t.Fatalf("matrix case %s: the catalogue still says its detector is pending (clear Kind.Pending)", c.fault)
		}
		row, fp := runCase(t, e, k, c)
		falsePos += fp
		if d := diffFingerprints(base, takeFingerprint(t, st)); len(d) > 0 {
			row.repaired = false
			row.problems = append(row.problems, "repair not exact: "+strings.Join(d, "; "))
		}
		if !row.repaired {
			rows = append(rows, row)
			t.Fatalf("%s: %v (stopping: the mesh is not clean for the next fault)", c.fault, row.problems)
		}
		for _, p := range row.problems {
			t.Errorf("%s: %s", c.fault, p)
		}
		rows = append(rows, row)
		delete(kinds, c.fault)
	}
	for _, k := range fault.Kinds() {
		if _, left := kinds[k.Name]; !left {
			continue
		}
		if k.Pending {
			// No detector yet: TestPendingFaults checks its symptom.
			rows = append(rows, matrixRow{fault: k.Name, code: k.Code, where: k.Where,
				symptom: "not injected: pending a detector (TestPendingFaults checks its symptom)"})
			continue
		}
		if k.LB == "" || k.LB == st.LB {
			t.Errorf("fault %s has no matrix case", k.Name)
			continue
		}
		rows = append(rows, matrixRow{fault: k.Name, code: k.Code, where: k.Where,
			symptom: "not injected: needs --lb " + k.LB + " (this kernel has no IPVS; the VM lane injects it: e2e/vm/check.sh mesh_ipvs_faults)"})
	}
	healthy("after every fault")
	stacked(t, e, base)
}

// runCase breaks, checks, repairs; it returns the row and the number of
// false positives (findings above info other than the expected one).
func runCase(t *testing.T, e *matrixEnv, k fault.Kind, c matrixCase) (row matrixRow, fp int) {
	t.Helper()
	row = matrixRow{fault: k.Name, code: k.Code, where: c.netns(e), offline: k.Offline}
	out, errs, code := meshtest.Run(t, "mesh", "break", "--name", e.name, k.Name, "--node", "node0", "-o", "json")
	if code != 0 {
		row.problems = append(row.problems, fmt.Sprintf("mesh break: exit %d: %s", code, errs))
		return row, 0
	}
	var f fault.Fault
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("mesh break -o json: %v\n%s", err, out)
	}
	defer func() {
		if _, errs, code := meshtest.Run(t, "mesh", "repair", "--name", e.name); code != 0 {
			row.repaired = false
			row.problems = append(row.problems, fmt.Sprintf("mesh repair: exit %d: %s", code, errs))
			return
		}
		// Clean again: no finding above info, with and without a probe.
		row.repaired = true
		for _, probe := range []bool{false, true} {
			if extra := serious(doctorLive(t, e.name, probe)); len(extra) > 0 {
				row.repaired = false
				row.problems = append(row.problems, fmt.Sprintf("after repair (probe %v): %v", probe, extra))
			}
		}
		for _, s := range []mesh.ServiceState{e.web, e.dns} {
			outs := e.req(2, 0, s, "")
			if err := expectMix(outs, 0, "", s.Tasks[0].Name, s.Tasks[1].Name); err != nil {
				row.repaired = false
				row.problems = append(row.problems, fmt.Sprintf("after repair, %s: %v", s.Name, err))
			}
		}
	}()

	got := serious(doctorLive(t, e.name, k.Probe))
	want := 0
	for _, g := range got {
		if g.Code == k.Code && g.Netns == row.where && (c.port == "" || g.Port == c.port) {
			want++
		} else {
			fp++
		}
	}
	row.detected = want > 0 && want == len(got)
	if !row.detected {
		row.problems = append(row.problems, fmt.Sprintf("doctor: want only %s in %s %s, got %v", k.Code, row.where, c.port, got))
	}
	if f.Code != k.Code || f.Netns != row.where {
		row.problems = append(row.problems, fmt.Sprintf("mesh break says doctor must report %s in %s, the matrix expects %s in %s", f.Code, f.Netns, k.Code, row.where))
	}
	var err error
	row.symptom, err = c.symptom(e, &f)
	if err != nil {
		row.problems = append(row.problems, "symptom not reproduced: "+err.Error())
		row.symptom += " (NOT AS EXPECTED)"
	}
	for _, g := range serious(doctorOffline(t, e.name, t.TempDir())) {
		if g.Code == k.Code && g.Netns == row.where {
			row.offlineOK = true
		}
	}
	if row.offlineOK != k.Offline {
		row.problems = append(row.problems, fmt.Sprintf("offline bundle: found %v, the catalogue says %v", row.offlineOK, k.Offline))
	}
	return row, fp
}
