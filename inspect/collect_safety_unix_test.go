//go:build unix

package inspect

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// plantingRunner is fakeRunner that, on the first command it runs, plants
// links in the bundle being written: what someone with write access to a
// shared output directory could do while collect runs.
type plantingRunner struct {
	*fakeRunner
	once  sync.Once
	plant func()
}

func (p *plantingRunner) Run(ctx context.Context, path, name string, args ...string) ([]byte, error) {
	if path != "" { // a namespace's command: its folder is there
		p.once.Do(p.plant)
	}
	return p.fakeRunner.Run(ctx, path, name, args...)
}

// TestCollectNeverWritesThroughLinks: links planted in the bundle while it
// is written (to a file outside, to a directory outside) are not written
// through; collect fails naming the file, and nothing outside changed.
func TestCollectNeverWritesThroughLinks(t *testing.T) {
	for _, tc := range []struct {
		name, link string
		toDir      bool
	}{
		{"file of a namespace", "netns/host/" + BundleIptables, false},
		{"notes", BundleNotes, false},
		{"docker folder", BundleDockerDir, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, victims := testutil.NewVictims(t)
			target := victims.File
			if tc.toDir {
				target = victims.Dir
			}
			dir := filepath.Join(top, "bundle")
			r := &plantingRunner{fakeRunner: &fakeRunner{out: hostOutputs(t), installed: allTools}}
			r.plant = func() {
				if err := os.Symlink(target, filepath.Join(dir, tc.link)); err != nil {
					t.Error(err)
				}
			}
			// Without IPVS, so a note is written.
			dk := &fakeDocker{nets: []network.Inspect{{Network: network.Network{ID: "c5h7abz82pq0h1rtmf8tjkxn4", Name: "ingress", Ingress: true}}}}
			o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{t.TempDir()}, Runner: r, IPVS: fakeProbe{reason: "no IPVS"}, Docker: dk}
			err := Collect(context.Background(), o, dir)
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, tc.link)) {
				t.Errorf("collect: %v, want an error naming %s", err, tc.link)
			}
			victims.Untouched(t)
		})
	}
}

// TestCollectOutputModes: the bundle is 0700 directories and 0600 files,
// an accepted empty directory included.
func TestCollectOutputModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{out: hostOutputs(t), installed: allTools}
	o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{t.TempDir()}, Runner: r, IPVS: fakeProbe{reason: "no IPVS"}, NoDocker: true}
	if err := Collect(context.Background(), o, dir); err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Lstat(p)
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = fs.ModeDir | 0o700
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
		}
		n++
		return nil
	})
	if n < 5 {
		t.Errorf("only %d entries written", n)
	}
}

// TestCollectRefusesOthersDirectory: an existing empty directory that
// someone else owns (one they could plant links in) is refused before
// any command runs.
func TestCollectRefusesOthersDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{}
	err := Collect(context.Background(), CollectOptions{HostNetns: selfNetns, Runner: r}, dir)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("err = %v, want the directory refused as someone else's", err)
	}
	if len(r.ran) != 0 {
		t.Errorf("ran commands before refusing: %q", r.ran)
	}
	// A link to a directory is not an output directory either.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	if err := Collect(context.Background(), CollectOptions{HostNetns: selfNetns, Runner: r}, link); err == nil || !strings.Contains(err.Error(), "link") {
		t.Errorf("collect into a link: %v", err)
	}
}
