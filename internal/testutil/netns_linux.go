package testutil

import (
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// Netns creates a network namespace for the test, with lo up, pinned
// under the test's temporary directory, and destroys it when the test
// ends (also after a failure). It needs root (NeedRoot).
func Netns(t testing.TB) string {
	t.Helper()
	NeedRoot(t)
	path := filepath.Join(t.TempDir(), Prefix())
	if err := netnsx.Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsx.Destroy(path) })
	err := netnsx.Do(path, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		t.Fatalf("netns %s: lo up: %v", path, err)
	}
	return path
}
