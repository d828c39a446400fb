//go:build unix

package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

func TestCreateDirNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "bundle")
	d, err := CreateDir(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Mkdir("netns"); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("netns/x.txt", []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{path: fs.ModeDir | 0o700, filepath.Join(path, "netns"): fs.ModeDir | 0o700, filepath.Join(path, "netns", "x.txt"): 0o600} {
		st, err := os.Lstat(p)
		if err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode(), err, want)
		}
	}
	// Nothing is written twice: an existing name is an error.
	if err := d.WriteFile("netns/x.txt", []byte("y")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write: %v, want ErrExist", err)
	}
	if err := d.Mkdir("netns"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second mkdir: %v, want ErrExist", err)
	}
}

// TestCreateDirPlantedLinks: links planted in the output directory are
// never written through, whether they point out of it or not.
func TestCreateDirPlantedLinks(t *testing.T) {
	top, v := testutil.NewVictims(t)
	victim, outside := v.File, v.Dir
	path := filepath.Join(top, "out")
	d, err := CreateDir(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Planted after CreateDir (a race with a world-writable parent).
	os.Symlink(victim, filepath.Join(path, "NOTES.txt"))
	os.Symlink(outside, filepath.Join(path, "netns"))
	os.Symlink("NOTES.txt", filepath.Join(path, "inside"))
	if err := d.WriteFile("NOTES.txt", []byte("overwritten")); err == nil {
		t.Error("wrote through a link to a file outside")
	}
	if err := d.WriteFile("inside", []byte("overwritten")); err == nil {
		t.Error("wrote through a link inside")
	}
	if err := d.Mkdir("netns"); err == nil {
		t.Error("mkdir over a planted link")
	}
	if err := d.WriteFile("netns/host.txt", []byte("x")); err == nil {
		t.Error("wrote into a directory outside through a link")
	}
	v.Untouched(t)
}

func TestCreateDirExisting(t *testing.T) {
	top := t.TempDir()
	empty := filepath.Join(top, "empty")
	if err := os.Mkdir(empty, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(empty, 0o777)
	d, err := CreateDir(empty)
	if err != nil {
		t.Fatalf("an empty directory of ours: %v", err)
	}
	d.Close()
	if st, _ := os.Stat(empty); st.Mode().Perm() != 0o700 {
		t.Errorf("accepted directory is %v, want 0700", st.Mode().Perm())
	}

	full := filepath.Join(top, "full")
	os.MkdirAll(filepath.Join(full, "x"), 0o700)
	link := filepath.Join(top, "link")
	os.Symlink(empty, link)
	file := filepath.Join(top, "file")
	os.WriteFile(file, nil, 0o600)
	cases := map[string]string{full: "not empty", link: "is a link", file: "not a directory"}
	if os.Geteuid() == 0 {
		other := filepath.Join(top, "other")
		os.Mkdir(other, 0o777)
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases[other] = "owned by uid 65534"
	}
	for p, want := range cases {
		_, err := CreateDir(p)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming it and saying %q", p, err, want)
		}
	}
}

func TestCreate(t *testing.T) {
	top, v := testutil.NewVictims(t)
	p := filepath.Join(top, "a.pcapng")
	f, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, _ := os.Stat(p); st.Mode() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode())
	}
	if _, err := Create(p); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("existing file: %v", err)
	}
	os.Symlink(v.File, filepath.Join(top, "l.pcapng"))
	os.Symlink("/no/such", filepath.Join(top, "dangling.pcapng"))
	for _, n := range []string{"l.pcapng", "dangling.pcapng"} {
		if _, err := Create(filepath.Join(top, n)); err == nil {
			t.Errorf("%s: created through a link", n)
		}
	}
	v.Untouched(t)
	fifo := filepath.Join(top, "fifo")
	syscall.Mkfifo(fifo, 0o644)
	if _, err := Create(fifo); err == nil {
		t.Error("opened a FIFO for writing")
	}
}
