package mesh_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
)

// TestDownRefusesNonMesh: `mesh down` removes only a directory holding a
// mesh's state; anything else is refused with the reason, untouched.
func TestDownRefusesNonMesh(t *testing.T) {
	testutil.NeedRoot(t)
	runDir := t.TempDir()
	elsewhere := t.TempDir()
	if err := os.WriteFile(filepath.Join(elsewhere, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		make func(path string) error
		want string
	}{
		{"notmesh", func(p string) error {
			if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(p, "sub", "precious"), []byte("x"), 0o644)
		}, "holds no state.json"},
		{"alink", func(p string) error { return os.Symlink(elsewhere, p) }, "is a link"},
		{"afile", func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) }, "not a directory"},
		{"other", func(p string) error {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(p, "state.json"), []byte(`{"name":"someone-else"}`), 0o644)
		}, `belongs to mesh "someone-else"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(runDir, tc.name)
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			out, errs, code := runBin(t, "mesh", "down", "--run-dir", runDir, "--name", tc.name)
			if code == 0 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, p) {
				t.Errorf("mesh down: exit %d, %q %q; want it refused saying %q", code, out, errs, tc.want)
			}
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("%s was removed: %v", p, err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "precious")); err != nil {
		t.Errorf("the link's target lost its file: %v", err)
	}
	// An empty directory (a mesh killed before it wrote its state) goes.
	empty := filepath.Join(runDir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runBin(t, "mesh", "down", "--run-dir", runDir, "--name", "empty"); code != 0 {
		t.Errorf("down of an empty mesh directory: exit %d, %s", code, errs)
	}
	if _, err := os.Lstat(empty); err == nil {
		t.Errorf("%s is still there", empty)
	}
}

// TestAgentDetached: the agent keeps none of its caller's descriptors, so
// `meshtrace mesh up | tail -1` ends (and an extra descriptor the caller
// inherited, a harness's pipe, reaches EOF too), in a session of its own.
func TestAgentDetached(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshName(t)
	t.Cleanup(func() { downAPI(t, name) })
	extraR, extraW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.Meshtrace(t), "mesh", "up", "--name", name, "--nodes", "1", "--lb", "iptables")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// mesh up inherits the pipe as fd 5 (above the agent's ready fd 3).
	cmd.ExtraFiles = []*os.File{nil, nil, extraW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	extraW.Close()
	pipes := map[string]string{pipeID(t, stdout.(*os.File)): "mesh up's standard output", pipeID(t, extraR): "the descriptor mesh up inherited"}
	eof := func(what string, r io.Reader) {
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, r); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("%s never ends: a process kept it open after mesh up returned", what)
		}
	}
	eof("mesh up's standard output", stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mesh up: %v", err)
	}
	eof("the descriptor mesh up inherited", extraR)
	extraR.Close()

	st, err := mesh.Load("", name)
	if err != nil {
		t.Fatal(err)
	}
	fds := filepath.Join("/proc", itoa(st.AgentPID), "fd")
	ents, err := os.ReadDir(fds)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(fds, e.Name()))
		if what, ok := pipes[target]; ok {
			t.Errorf("agent fd %s is %s (%s)", e.Name(), what, target)
		}
	}
	stat, err := os.ReadFile(filepath.Join("/proc", itoa(st.AgentPID), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 4 || f[3] != itoa(st.AgentPID) {
		t.Errorf("agent %d is not its session's leader: session %v", st.AgentPID, f)
	}
}

// pipeID is how /proc/PID/fd names the pipe f is an end of.
func pipeID(t *testing.T, f *os.File) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join("/proc/self/fd", itoa(int(f.Fd()))))
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// TestListShowsDeadAgent: after the agent is killed, `mesh ls` says so
// (text and JSON), and `mesh status` too.
func TestListShowsDeadAgent(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshName(t)
	upMesh(t, name, "--nodes", "1", "--lb", "iptables")
	summary := func() mesh.Summary {
		out, errs, code := runBin(t, "mesh", "ls", "-o", "json")
		var ms []mesh.Summary
		if err := json.Unmarshal([]byte(out), &ms); code != 0 || err != nil {
			t.Fatalf("mesh ls -o json: exit %d, %v\n%s%s", code, err, out, errs)
		}
		for _, m := range ms {
			if m.Name == name {
				return m
			}
		}
		t.Fatalf("mesh ls does not list %s: %s", name, out)
		return mesh.Summary{}
	}
	if s := summary(); s.Agent != "running" {
		t.Errorf("before the kill: agent %q, want running", s.Agent)
	}
	st, _ := statusJSON(t, name)
	if err := killPID(st.AgentPID); err != nil {
		t.Fatal(err)
	}
	if s := summary(); s.Agent != "dead" {
		t.Errorf("after the kill: agent %q, want dead (%+v)", s.Agent, s)
	}
	out, _, _ := runBin(t, "mesh", "ls")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, name+" ") && !strings.Contains(l, "dead") {
			t.Errorf("mesh ls line does not say the agent is dead: %q", l)
		}
	}
	out, _, code := runBin(t, "mesh", "status", "--name", name)
	if code == 0 || !strings.Contains(out, "agent pid "+itoa(st.AgentPID)+" dead") {
		t.Errorf("mesh status: exit %d, %q; want the agent said dead", code, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
