package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool skips a test whose command (tshark, tmux) is not installed,
// except in CI (CI set), where scripts/setup installs them: there it
// fails.
func NeedTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed and CI is set (scripts/setup installs it)", name)
	}
	t.Skipf("%s is not installed: scripts/setup (or apt-get install %s) installs it", name, name)
}
