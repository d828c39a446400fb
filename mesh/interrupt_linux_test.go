package mesh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
)

// TestDownAfterUpKilled kills `mesh up` with SIGKILL half way (stalled
// before a phase by a test hook, so "half way" is exact) and checks that
// `mesh down` removes what it had built, without a usable state file.
func TestDownAfterUpKilled(t *testing.T) {
	testutil.NeedRoot(t)
	for _, phase := range []string{"veths", "config", "agent"} {
		t.Run(phase, func(t *testing.T) {
			name := meshtest.Name(t)
			before := takeSnapshot(t, name)
			t.Cleanup(func() { meshtest.Down(t, name) })
			cmd := stalledUp(t, name, phase)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			half := takeSnapshot(t, name)
			if len(half.Mounts) == 0 {
				t.Fatalf("up killed before %s left no namespace: the test proves nothing", phase)
			}
			if st, err := mesh.Load("", name); err == nil && st.Phase != mesh.PhaseBuilding {
				t.Errorf("killed up left phase %q", st.Phase)
			}
			out, errs, code := meshtest.Run(t, "mesh", "down", "--name", name)
			if code != 0 || !strings.Contains(out, fmt.Sprintf("%d namespaces", len(half.Mounts))) {
				t.Errorf("mesh down: exit %d, %q %s (had %d namespaces)", code, out, errs, len(half.Mounts))
			}
			assertRestored(t, name, before)
		})
	}
}

// TestUpInterruptedRollsBack: Ctrl-C during `up` undoes everything by
// itself.
func TestUpInterruptedRollsBack(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshtest.Name(t)
	before := takeSnapshot(t, name)
	t.Cleanup(func() { meshtest.Down(t, name) })
	cmd := stalledUp(t, name, "config")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("interrupted up exited with %v, want a failure", err)
	}
	if errs := cmd.Stderr.(*bytes.Buffer).String(); !strings.Contains(errs, "context canceled") {
		t.Errorf("interrupted up said %q", errs)
	}
	assertRestored(t, name, before)
}

// TestUpFailureRollsBack injects a failure through the Go API with the real
// kernel: Up returns the error and leaves nothing.
func TestUpFailureRollsBack(t *testing.T) {
	testutil.NeedRoot(t)
	for _, phase := range []string{"veths", "agent"} {
		t.Run(phase, func(t *testing.T) {
			name := meshtest.Name(t)
			before := takeSnapshot(t, name)
			t.Cleanup(func() { meshtest.Down(t, name) })
			o := mesh.Options{Binary: testutil.Meshtrace(t), Hook: func(step string) error {
				if strings.HasPrefix(step, phase) {
					return errors.New("injected")
				}
				return nil
			}}
			cfg := mesh.Config{Name: name, LB: mesh.LBIptables, Services: []mesh.ServiceSpec{{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: 3}}}
			if _, err := mesh.Up(context.Background(), cfg, o); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("Up = %v, want the injected failure", err)
			}
			assertRestored(t, name, before)
		})
	}
}

// TestUpAPI builds a mesh through the Go API (the agent is the real
// binary) and asks it from every node.
func TestUpAPI(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshtest.Name(t)
	before := takeSnapshot(t, name)
	t.Cleanup(func() { meshtest.Down(t, name) })
	cfg := mesh.Config{Name: name, Nodes: 3, LB: mesh.LBAuto, Services: []mesh.ServiceSpec{{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: 3}}}
	st, err := mesh.Up(context.Background(), cfg, mesh.Options{Binary: testutil.Meshtrace(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		seen := map[string]bool{}
		for range 3 {
			r, err := mesh.Ask(context.Background(), st.Client.Netns, "tcp", n.IP.String()+":8080", "")
			if err != nil {
				t.Fatalf("client -> %s: %v", n.Name, err)
			}
			seen[r.Task] = true
		}
		if len(seen) != 3 {
			t.Errorf("client -> %s reached %v, want 3 tasks", n.Name, seen)
		}
	}
	r, err := mesh.Down(name, mesh.Options{})
	if err != nil || len(r.Agents) != 1 || r.Namespaces != 2+3*3+3 {
		t.Errorf("Down = %+v, %v", r, err)
	}
	assertRestored(t, name, before)
}

// stalledUp starts `mesh up` stalled before phase and waits until it is.
func stalledUp(t *testing.T, name, phase string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testutil.Meshtrace(t), "mesh", "up", "--name", name, "--nodes", "2",
		"--service", "web:8080:80x3", "--service", "dns:5353:53/udpx2", "--lb", "iptables", "--test-stall-at", phase)
	cmd.Stdout, cmd.Stderr = new(bytes.Buffer), new(bytes.Buffer)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitFile(t, filepath.Join(mesh.DefaultRunDir, name, "stalled"), 20*time.Second, cmd)
	return cmd
}

// waitFile waits for the ready file path, failing early if cmd exits.
func waitFile(t *testing.T, path string, timeout time.Duration, cmd *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if !isAlive(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)) {
			t.Fatalf("%v exited before %s appeared: %s", cmd.Args, path, cmd.Stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", path, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killPID sends SIGKILL and waits until the process is gone or a zombie.
func killPID(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("bad pid %d", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	for range 500 {
		if !isAlive(fmt.Sprintf("/proc/%d/cmdline", pid)) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("pid %d survived SIGKILL", pid)
}
