package inspect

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/dockerns"
)

func names(refs []NetnsRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.Name)
	}
	return out
}

// Files that are not namespaces (what a crashed dockerd leaves behind),
// symlinks, subdirectories and missing directories are skipped.
func TestDiscoverSkipsNonNamespaces(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stale"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/ns/net", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	refs, err := Discover("/proc/self/ns/net", []string{filepath.Join(dir, "missing"), dir})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"host"}, names(refs)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if refs[0].Path != "/proc/self/ns/net" || refs[0].Inode == 0 {
		t.Errorf("host ref %+v", refs[0])
	}
}

func TestDiscoverErrors(t *testing.T) {
	if _, err := Discover("/nonexistent/ns", nil); err == nil || !strings.Contains(err.Error(), "host netns /nonexistent/ns") {
		t.Errorf("missing host: %v", err)
	}
	f := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(f, nil, 0o644)
	if _, err := Discover(f, nil); err == nil || !strings.Contains(err.Error(), "not a network namespace") {
		t.Errorf("host not a namespace: %v", err)
	}
	if _, err := Discover("/proc/self/ns/net", []string{f}); err == nil || !strings.Contains(err.Error(), "netns dir "+f) {
		t.Errorf("dir that is a file: %v", err)
	}
}

// A world's namespaces are listed host first, then by name; a namespace
// reachable under two names is listed once, under the first.
func TestDiscoverWorld(t *testing.T) {
	w := world(t, dockerns.Options{Tasks: 2})
	dup := filepath.Join(w.Dir, "zz-same-as-sandbox")
	if err := os.WriteFile(dup, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(filepath.Join(w.Dir, w.Sandbox), dup, "none", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Unmount(dup, unix.MNT_DETACH)
		os.Remove(dup)
	})
	refs, err := Discover(w.HostPath, []string{w.Dir, w.Dir})
	if err != nil {
		t.Fatal(err)
	}
	want := w.Names()[1:]
	sort.Strings(want)
	if diff := cmp.Diff(append([]string{"host"}, want...), names(refs)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	seen := map[uint64]bool{}
	for _, r := range refs {
		if seen[r.Inode] {
			t.Errorf("inode %d listed twice", r.Inode)
		}
		seen[r.Inode] = true
	}
}
