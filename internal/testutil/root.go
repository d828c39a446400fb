// Package testutil holds helpers shared by tests that need root and
// network namespaces.
package testutil

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

// NeedRoot skips a test that needs root when not root, except in CI (CI
// set), where a skipped namespace test would make a green run meaningless:
// there it fails.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("this test needs root and CI is set: run the tests as root")
	}
	t.Skip("needs root")
}

var seq atomic.Int64

// Prefix returns a name prefix unique to this test process and call, for
// namespaces, links and directories the test creates ("mt-t<pid>-<n>-").
// Kept short: link names are limited to 15 bytes.
func Prefix() string {
	return fmt.Sprintf("mt%d%d", os.Getpid()%100000, seq.Add(1))
}
