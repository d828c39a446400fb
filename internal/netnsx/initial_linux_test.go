package netnsx_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestInitialPath: the path names the namespace the process started in
// from any thread, also from one inside another namespace, where
// /proc/thread-self/ns/net (and /proc/self/ns/net, when it is the main
// thread that entered) names that other one.
func TestInitialPath(t *testing.T) {
	testutil.NeedRoot(t)
	p := netnsx.InitialPath()
	if p == "" {
		t.Fatal("no initial namespace kept")
	}
	ino := func(path string) uint64 {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	// No thread of the test has entered another namespace yet.
	start := ino("/proc/thread-self/ns/net")
	if got := ino(p); got != start {
		t.Fatalf("%s is namespace %d, want the start's %d", p, got, start)
	}
	other := filepath.Join(t.TempDir(), testutil.Prefix())
	if err := netnsx.Create(other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsx.Destroy(other) })
	var here, initial uint64
	err := netnsx.Do(other, func() error {
		here, initial = ino("/proc/thread-self/ns/net"), ino(p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if here != ino(other) {
		t.Fatalf("inside Do the thread is in %d, not %s", here, other)
	}
	if initial != start {
		t.Errorf("inside another namespace %s is namespace %d, want the start's %d", p, initial, start)
	}
}
