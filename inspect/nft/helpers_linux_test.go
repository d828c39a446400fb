package nft

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// newNetns creates a throwaway namespace (removed in t.Cleanup, also after
// a failure) and returns its name and path.
func newNetns(t testing.TB) (name, path string) {
	t.Helper()
	testutil.NeedRoot(t)
	name = testutil.Prefix() + "nft"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name, "/run/netns/" + name
}

// nsRun runs a command inside the namespace.
func nsRun(t testing.TB, ns string, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("netns %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}
