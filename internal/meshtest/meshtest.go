// Package meshtest holds what the root tests of the mesh and of its faults
// share: a unique mesh name, running the meshtrace binary, and a mesh
// brought up by it that is always torn down.
package meshtest

import (
	"bytes"
	"errors"
	"os/exec"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
)

// Name returns a mesh name unique to this test process and call.
func Name(t testing.TB) string {
	t.Helper()
	n := testutil.Prefix()
	if err := mesh.ValidName(n); err != nil {
		t.Fatalf("testutil.Prefix %q is not a mesh name: %v", n, err)
	}
	return n
}

// Run runs the binary and returns stdout, stderr and the exit code.
func Run(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(testutil.Meshtrace(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("meshtrace %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// Up brings a mesh up with the real binary and always tears it down.
func Up(t testing.TB, name string, args ...string) {
	t.Helper()
	t.Cleanup(func() { Down(t, name) })
	out, errs, code := Run(t, append([]string{"mesh", "up", "--name", name}, args...)...)
	if code != 0 {
		t.Fatalf("mesh up %s: exit %d\n%s%s", name, code, out, errs)
	}
}

// Down removes mesh name through the API, failing the test if it cannot.
func Down(t testing.TB, name string) {
	t.Helper()
	if _, err := mesh.Down(name, mesh.Options{}); err != nil {
		t.Errorf("cleanup: mesh down %s: %v", name, err)
	}
}
