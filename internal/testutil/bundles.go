package testutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// RecordedBundles lists every bundle under the fixtures directory: each
// directory holding netns/host (fixtures/bundles/*, fixtures/bundles/plain/*,
// fixtures/swarm-vm*/node*, fixtures/cmdout/mesh-state/node0,
// fixtures/captures/bundle-node0*, …), sorted. It fails the test when it
// finds none.
func RecordedBundles(tb testing.TB, fixtures string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(fixtures, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if st, err := os.Stat(filepath.Join(p, "netns", "host")); err == nil && st.IsDir() {
			out = append(out, p)
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("walk %s: %v", fixtures, err)
	}
	if len(out) == 0 {
		tb.Fatalf("no bundles under %s", fixtures)
	}
	sort.Strings(out)
	return out
}
