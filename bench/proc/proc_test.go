package proc

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRun reports the exit status without failing, the bytes written to
// stdout, stderr's end, and the child's own peak RSS (a shell holding a
// 40 MB string).
func TestRun(t *testing.T) {
	u, err := Run(exec.Command("sh", "-c", "echo hello; echo oops >&2; exit 3"))
	if err != nil || u.ExitCode != 3 || u.Out != 6 || u.Stderr != "oops" {
		t.Fatalf("exit %d, out %d, stderr %q, err %v", u.ExitCode, u.Out, u.Stderr, err)
	}
	if _, err := Check(exec.Command("sh", "-c", "exit 3")); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Check of exit 3: %v", err)
	}
	if _, err := Check(exec.Command("sh", "-c", "exit 3"), 0, 3); err != nil {
		t.Errorf("Check allowing 3: %v", err)
	}
	u, err = Check(exec.Command("sh", "-c", `x=$(head -c 40000000 /dev/zero | tr '\0' a); echo ${#x}`))
	if err != nil {
		t.Fatal(err)
	}
	if u.RSSMB() < 40 || u.RSSMB() > 1000 {
		t.Errorf("peak RSS %.1f MB for a 40 MB string", u.RSSMB())
	}
	if _, err := Run(exec.Command("/nonexistent/binary")); err == nil {
		t.Error("a command that cannot start is not an error")
	}
}
