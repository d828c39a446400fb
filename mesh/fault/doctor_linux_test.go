package fault_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/internal/meshtest"
)

// stacked injects several faults at once (each on its own object, so none
// hides another), checks doctor names every one, and one repair puts the
// mesh back exactly.
func stacked(t *testing.T, e *matrixEnv, base fingerprint) {
	t.Helper()
	faults := []struct{ fault, service, node, code string }{
		{"drop-mark", "web", "node0", "mark-missing"},
		{"stop-task", "dns", "node0", "task-not-listening"},
		{"mtu", "web", "node0", "mtu-mismatch"},
		{"no-forward", "", "node0", "forwarding-disabled"},
		{"rp-filter", "", "node0", "rp-filter-strict"},
		{"no-fdb", "web", "node1", ""}, // on the other node: node0's doctor must not see it
	}
	for _, f := range faults {
		args := []string{"mesh", "break", "--name", e.name, f.fault, "--node", f.node}
		if f.service != "" {
			args = append(args, "--service", f.service)
		}
		if out, errs, code := meshtest.Run(t, args...); code != 0 {
			t.Fatalf("stacked %s: exit %d\n%s%s", f.fault, code, out, errs)
		}
	}
	got := map[string]bool{}
	for _, g := range serious(doctorLive(t, e.name, false)) {
		got[g.Code] = true
	}
	for _, f := range faults {
		if f.code != "" && !got[f.code] {
			t.Errorf("stacked faults: doctor lacks %s (got %v)", f.code, got)
		}
		delete(got, f.code)
	}
	if len(got) > 0 {
		t.Errorf("stacked faults: unexpected findings %v", got)
	}
	out, errs, code := meshtest.Run(t, "mesh", "repair", "--name", e.name)
	if code != 0 || strings.Count(out, "repaired fault") != len(faults) {
		t.Fatalf("stacked repair: exit %d\n%s%s", code, out, errs)
	}
	if d := diffFingerprints(base, takeFingerprint(t, e.st)); len(d) > 0 {
		t.Errorf("stacked repair is not exact: %v", d)
	}
	if extra := serious(doctorLive(t, e.name, true)); len(extra) > 0 {
		t.Errorf("after the stacked repair: %v", extra)
	}
}

type finding struct{ Code, Netns, Port string }

func (f finding) String() string { return f.Code + "@" + f.Netns + ":" + f.Port }

func serious(r *doctor.Report) []finding {
	var out []finding
	for _, f := range r.Findings {
		if f.Severity != doctor.Info {
			out = append(out, finding{f.Code, f.Netns, f.Port})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func doctorJSON(t *testing.T, args ...string) *doctor.Report {
	t.Helper()
	out, errs, code := meshtest.Run(t, append([]string{"doctor", "-o", "json"}, args...)...)
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code > 1 {
		t.Fatalf("doctor %v: exit %d, %v\n%s%s", args, code, err, out, errs)
	}
	if (code == 1) != (r.Worst() == doctor.Error || r.Worst() == doctor.Warning) {
		t.Errorf("doctor %v: exit %d with worst %q", args, code, r.Worst())
	}
	return &r
}

func doctorLive(t *testing.T, name string, probe bool) *doctor.Report {
	args := []string{"--mesh", name, "--node", "node0"}
	if probe {
		args = append(args, "--probe", "--probe-timeout", "2s")
	}
	return doctorJSON(t, args...)
}

// doctorOffline collects node0 into a bundle and reads it back.
func doctorOffline(t *testing.T, name, dir string) *doctor.Report {
	t.Helper()
	dir = filepath.Join(dir, "bundle")
	if out, errs, code := meshtest.Run(t, "collect", "--mesh", name, "--node", "node0", dir); code != 0 {
		t.Fatalf("collect: exit %d\n%s%s", code, out, errs)
	}
	return doctorJSON(t, "--from", dir)
}

func printMatrix(rows []matrixRow, falsePos int, took time.Duration) {
	injected, detected := 0, 0
	for _, r := range rows {
		if strings.HasPrefix(r.symptom, "not injected") {
			continue
		}
		injected++
		if r.detected {
			detected++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "doctor matrix: faults detected %d/%d, false positives %d (%s)\n", detected, injected, falsePos, took.Round(100*time.Millisecond))
	yes := map[bool]string{true: "yes", false: "NO"}
	for _, r := range rows {
		if strings.HasPrefix(r.symptom, "not injected") {
			fmt.Fprintf(&b, "  %-18s %-23s %-13s %s\n", r.fault, r.code, r.where, r.symptom)
			continue
		}
		off := map[bool]string{true: "offline: seen", false: "offline: live only"}[r.offlineOK]
		fmt.Fprintf(&b, "  %-18s %-23s %-13s detected %-3s repaired %-3s %-18s symptom: %s\n",
			r.fault, r.code, r.where, yes[r.detected], yes[r.repaired], off, r.symptom)
	}
	// Plain stdout, so the matrix reads as a table (go test -v shows it,
	// and a failing run always does); and a file for .ci/run to print
	// after a quiet passing run.
	fmt.Print(b.String())
	if dir := os.Getenv("MESHTRACE_REPORT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "doctor-matrix.txt"), []byte(b.String()), 0o644); err != nil {
			fmt.Println("doctor matrix: cannot write the report:", err)
		}
	}
}
