package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

const swarmVM = "../fixtures/swarm-vm/node0"

func textOf(t *testing.T, r *doctor.Report) string {
	t.Helper()
	var b strings.Builder
	if err := doctor.WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// withoutFiles copies a bundle without the files given (relative to it).
func withoutFiles(t *testing.T, bundle string, files ...string) string {
	t.Helper()
	dir := copyDir(t, bundle, "", nil)
	for _, f := range files {
		if err := os.RemoveAll(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func serious(r *doctor.Report) []doctor.Finding {
	var out []doctor.Finding
	for _, f := range r.Findings {
		if f.Severity != doctor.Info {
			out = append(out, f)
		}
	}
	return out
}

// TestDoctorNotCollected: with a file missing from a healthy bundle,
// doctor finds no fault, says what it could not check and why (the same
// lines as path), and does not say the node is healthy.
func TestDoctorNotCollected(t *testing.T) {
	if r := checkBundle(t, swarmVM); len(serious(r)) > 0 || len(r.Unknown) > 0 {
		t.Fatalf("recorded bundle: findings %+v unknown %+v", serious(r), r.Unknown)
	}
	for _, c := range []struct{ file, line string }{
		{"netns/ingress_sbox/iptables-save.txt", "tcp/8080: unknown past ingress_sbox: its iptables-save was not collected"},
		{"netns/ingress_sbox/ipvsadm.txt", "tcp/8080: unknown past ingress_sbox: its ipvsadm was not collected"},
		{"netns/55e431cb2652/iptables-save.txt", "tcp/8080: unknown past 55e431cb2652 for backend 10.0.0.4: its iptables-save was not collected"},
		{"netns/host/iptables-save.txt", "tcp/8080: unknown past host: its iptables-save was not collected"},
		{"netns/host/ip-addr.txt", "tcp/8080: unknown past host: its ip addr was not collected"},
	} {
		t.Run(c.file, func(t *testing.T) {
			r := checkBundle(t, withoutFiles(t, swarmVM, c.file))
			if s := serious(r); len(s) > 0 {
				t.Errorf("a missing file made faults: %+v", s)
			}
			found := false
			for _, u := range r.Unknown {
				found = found || strings.HasPrefix(u.Reason, c.line)
			}
			if !found {
				t.Errorf("unknown %+v lacks %q", r.Unknown, c.line)
			}
			text := textOf(t, r)
			if strings.Contains(text, "nothing wrong found") || !strings.Contains(text, c.line) {
				t.Errorf("text:\n%s", text)
			}
			if last := lastLine(text); !strings.HasPrefix(last, "coverage: ") {
				t.Errorf("last line %q is no coverage line", last)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestDoctorEmptyBundle: a bundle with an empty host folder is not a
// healthy node: nothing could be checked.
func TestDoctorEmptyBundle(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "netns", "host"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := checkBundle(t, dir)
	text := textOf(t, r)
	if strings.Contains(text, "nothing wrong found") || len(r.Unknown) == 0 || !strings.Contains(text, "not collected") {
		t.Errorf("empty bundle:\n%s", text)
	}
	if len(serious(r)) > 0 {
		t.Errorf("faults in an empty bundle: %+v", serious(r))
	}
}

// TestDoctorCoverage: the last line lists the checks run and those skipped
// for lack of data, with why.
func TestDoctorCoverage(t *testing.T) {
	vm := lastLine(textOf(t, checkBundle(t, swarmVM)))
	mesh := lastLine(textOf(t, checkBundle(t, meshBundle)))
	for _, c := range []struct {
		line, want string
	}{
		{vm, "checked: published ports (udp/5353, tcp/8080, tcp/8081)"},
		{vm, "forwarding (sysctl not collected"},
		{vm, "listeners (ss not collected"},
		{mesh, "forwarding"},
	} {
		if !strings.Contains(c.line, c.want) {
			t.Errorf("coverage %q lacks %q", c.line, c.want)
		}
	}
	if _, skipped, _ := strings.Cut(mesh, "not checked"); strings.Contains(skipped, "forwarding") || strings.Contains(skipped, "listeners") {
		t.Errorf("mesh bundle has sysctl.txt and ss.txt everywhere, yet: %q", mesh)
	}
}

// TestDoctorPlainOverlayHint: read with plain `ip addr`, no bundle makes
// doctor name an empty namespace or a placeholder.
func TestDoctorPlainOverlayHint(t *testing.T) {
	for _, dir := range testutil.RecordedBundles(t, "../fixtures") {
		text := textOf(t, checkBundle(t, testutil.PlainBundle(t, dir)))
		for _, bad := range []string{" in , ", "INGRESS_ID", "in \n"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s (plain): %q in:\n%s", dir, bad, text)
			}
		}
	}
}

// TestMissingFileProperty: for every recorded bundle, remove each file in
// turn. Doctor and path derive every port's verdict from the same path,
// so they never contradict each other: broken exactly when doctor has an
// error on the port (a task with nothing listening, which is beyond the
// network path, aside: path shows that on the backend), unknown exactly
// when doctor lists what it could not check for it; and a missing file never blames: no fault that the whole
// bundle does not have, no verdict other than the whole bundle's or
// unknown, no "nothing wrong found" while something is unknown.
func TestMissingFileProperty(t *testing.T) {
	for _, bundle := range testutil.RecordedBundles(t, "../fixtures") {
		full := checkBundle(t, bundle)
		fullFaults := faultSet(full)
		fullVerdict := map[string]topology.Verdict{}
		for _, pv := range full.Ports {
			fullVerdict[pv.Port] = pv.Verdict
		}
		dir := copyDir(t, bundle, "", nil)
		var files []string
		if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		runs := 0
		for _, f := range files {
			rel, _ := filepath.Rel(dir, f)
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
			m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
			if err != nil {
				t.Fatalf("%s without %s: %v", bundle, rel, err)
			}
			r := doctor.Check(m, doctor.Options{})
			name := bundle + " without " + rel
			agree(t, name, m, r)
			for k := range faultSet(r) {
				if !fullFaults[k] {
					t.Errorf("%s: fault %s that the whole bundle does not have", name, k)
				}
			}
			for _, pv := range r.Ports {
				if w, ok := fullVerdict[pv.Port]; ok && pv.Verdict != w && pv.Verdict != topology.VerdictUnknown {
					t.Errorf("%s: %s is %s, %s with every file", name, pv.Port, pv.Verdict, w)
				}
			}
			if err := os.WriteFile(f, data, 0o644); err != nil {
				t.Fatal(err)
			}
			runs++
		}
		if runs < 5 {
			t.Errorf("%s: only %d files", bundle, runs)
		}
	}
}

func faultSet(r *doctor.Report) map[string]bool {
	out := map[string]bool{}
	for _, f := range serious(r) {
		out[f.Code+" in "+f.Netns+" "+f.Port] = true
	}
	return out
}

// agree: doctor's verdict of each port is what path says, its findings on
// the port match it, and its text claims health only when all is known.
func agree(t *testing.T, name string, m *topology.Model, r *doctor.Report) {
	t.Helper()
	for _, pv := range r.Ports {
		proto, port, _ := strings.Cut(pv.Port, "/")
		var n int
		for _, c := range port {
			n = n*10 + int(c-'0')
		}
		p, err := topology.FindPath(m, topology.Query{Proto: proto, Port: n})
		if err != nil {
			t.Errorf("%s: path %s: %v, doctor says %s", name, pv.Port, err, pv.Verdict)
			continue
		}
		if p.Verdict != pv.Verdict {
			t.Errorf("%s: path says %s is %s, doctor %s", name, pv.Port, p.Verdict, pv.Verdict)
		}
		errs, unknown := 0, 0
		for _, f := range r.Findings {
			if f.Port != pv.Port || f.Severity != doctor.Error {
				continue
			}
			if f.Code == "task-not-listening" {
				// Beyond the network path: path shows it on the
				// backend, whatever the verdict.
				shown := false
				for _, b := range p.Backends {
					shown = shown || b.NotListening && b.Netns != nil && *b.Netns == f.Netns
				}
				if !shown {
					t.Errorf("%s: %s in %s that path does not show", name, f.Code, f.Netns)
				}
				continue
			}
			errs++
		}
		for _, u := range r.Unknown {
			if u.Port == pv.Port {
				unknown++
			}
		}
		switch pv.Verdict {
		case topology.VerdictBroken:
			if errs == 0 {
				t.Errorf("%s: %s broken without an error finding", name, pv.Port)
			}
		case topology.VerdictUnknown:
			if errs > 0 || unknown == 0 || unknown != len(p.Unknowns()) {
				t.Errorf("%s: %s unknown with %d errors, %d unknown lines (path has %d)", name, pv.Port, errs, unknown, len(p.Unknowns()))
			}
		case topology.VerdictComplete:
			if errs > 0 || unknown > 0 {
				t.Errorf("%s: %s complete with %d errors, %d unknown lines", name, pv.Port, errs, unknown)
			}
		}
	}
	if text := textOf(t, r); len(r.Unknown) > 0 && strings.Contains(text, "nothing wrong found") {
		t.Errorf("%s: says nothing is wrong while %d things are unknown", name, len(r.Unknown))
	}
}

// TestDoctorDockerFileMissing: the overlays' endpoints come from
// docker/networks.json alone; without it (containers.json and
// services.json still there) the coverage line says stale neighbours were
// not checked against Docker's endpoints, as without any docker/*.json.
func TestDoctorDockerFileMissing(t *testing.T) {
	const want = "stale neighbours against Docker's endpoints (docker network inspect not collected"
	const bundle = "../fixtures/mesh-bundle/node0"
	full := lastLine(textOf(t, checkBundle(t, bundle)))
	if strings.Contains(full, "stale neighbours against") {
		t.Fatalf("the whole bundle: %s", full)
	}
	for _, files := range [][]string{{"docker"}, {"docker/networks.json"}} {
		last := lastLine(textOf(t, checkBundle(t, withoutFiles(t, bundle, files...))))
		if _, notChecked, _ := strings.Cut(last, "not checked for lack of data:"); !strings.Contains(notChecked, want) {
			t.Errorf("without %v: %s", files, last)
		}
	}
}

// TestNoStaleBackendWithoutTasks: the recorded mesh node with its
// overlay's neighbours and FDB read empty: broken (vxlan-no-fdb); without
// docker/*.json too, still never stale-backend, which says no task has the
// address and removes the real server: only every node's task list could
// tell that.
func TestNoStaleBackendWithoutTasks(t *testing.T) {
	dir := withoutFiles(t, "../fixtures/mesh-bundle/node0", "docker")
	ovls, err := filepath.Glob(filepath.Join(dir, "netns", "1-*"))
	if err != nil || len(ovls) == 0 {
		t.Fatalf("no overlay in the recording: %v", err)
	}
	for _, o := range ovls {
		for _, f := range []string{"ip-neigh.txt", "bridge-fdb.txt"} {
			if err := os.WriteFile(filepath.Join(o, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := checkBundle(t, dir)
	if len(serious(r)) == 0 {
		t.Fatal("no fault with the overlay's entries gone")
	}
	for _, f := range serious(r) {
		if f.Code != "vxlan-no-fdb" {
			t.Errorf("%s in %s: %s", f.Code, f.Netns, f.Summary)
		}
	}
}

// TestCoverageNotBothWays: a check of the host alone (vtep source) whose
// route table was not collected is listed as not checked only, never also
// as checked (the recorded Docker 28 node's plain bundle has no ip route).
func TestCoverageNotBothWays(t *testing.T) {
	last := lastLine(textOf(t, checkBundle(t, "../fixtures/swarm-vm28/plain")))
	checked, skipped, ok := strings.Cut(last, "not checked for lack of data:")
	if !ok || !strings.Contains(skipped, "vtep source (ip route not collected in host)") {
		t.Fatalf("coverage: %s", last)
	}
	if strings.Contains(checked, "vtep source") {
		t.Errorf("vtep source both checked and not: %s", last)
	}
}
