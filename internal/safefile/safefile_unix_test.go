//go:build unix

package safefile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secret is the content of a file outside the directory under test: no
// error may ever print it.
const secret = "root:$6$not-for-your-eyes:19000:0:99999:7:::"

// tree makes DIR/in (the directory read) beside DIR/secret.
func tree(t *testing.T) (in, secretPath string) {
	t.Helper()
	top := t.TempDir()
	in = filepath.Join(top, "in")
	secretPath = filepath.Join(top, "secret")
	if err := os.MkdirAll(filepath.Join(in, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretPath, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "sub", "ok.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return in, secretPath
}

func openDir(t *testing.T, path string, limit int64) *Dir {
	t.Helper()
	d, err := OpenDir(path, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDirReadsInside(t *testing.T) {
	in, _ := tree(t)
	// Links that stay inside are followed.
	if err := os.Symlink("sub/ok.txt", filepath.Join(in, "rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(in, "subdir")); err != nil {
		t.Fatal(err)
	}
	d := openDir(t, in, 0)
	for _, name := range []string{"sub/ok.txt", "rel", "subdir/ok.txt"} {
		b, err := d.ReadFile(name)
		if err != nil || string(b) != "hello\n" {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	ents, err := d.ReadDir("subdir")
	if err != nil || len(ents) != 1 || ents[0].Name() != "ok.txt" {
		t.Errorf("ReadDir(subdir) = %v, %v", ents, err)
	}
	if _, err := d.ReadFile("missing.txt"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(in, "missing.txt")) {
		t.Errorf("missing: %v, want ErrNotExist naming the path", err)
	}
}

func TestDirRefusesLinksOut(t *testing.T) {
	in, secretPath := tree(t)
	links := map[string]string{
		"abs":      secretPath,
		"rel":      "../secret",
		"root":     "/",
		"dangling": "/no/such/file",
		"devzero":  "/dev/zero",
		"sub/up":   "../../secret",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(in, name)); err != nil {
			t.Fatal(err)
		}
	}
	d := openDir(t, in, 0)
	for name := range links {
		_, err := d.ReadFile(name)
		if !errors.Is(err, ErrOutside) {
			t.Errorf("%s: %v, want ErrOutside", name, err)
			continue
		}
		if !strings.Contains(err.Error(), filepath.Join(in, name)) {
			t.Errorf("%s: %q does not name the path", name, err)
		}
		if strings.Contains(err.Error(), "not-for-your-eyes") {
			t.Errorf("%s: the error prints the target's content: %q", name, err)
		}
	}
	if _, err := d.ReadDir("root"); !errors.Is(err, ErrOutside) {
		t.Errorf("ReadDir(root -> /) = %v, want ErrOutside", err)
	}
	if _, err := d.ReadFile("../secret"); !errors.Is(err, ErrOutside) {
		t.Errorf("../secret: %v, want ErrOutside", err)
	}
}

func TestDirRefusesFIFOAndDevices(t *testing.T) {
	in, _ := tree(t)
	if err := syscall.Mkfifo(filepath.Join(in, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	names := []string{"fifo", "sub"}
	if os.Geteuid() == 0 {
		// A device node inside the directory (root only): /dev/zero's.
		if err := syscall.Mknod(filepath.Join(in, "zero"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
			t.Fatal(err)
		}
		names = append(names, "zero")
	}
	d := openDir(t, in, 0)
	for _, name := range names {
		done := make(chan error, 1)
		go func() { _, err := d.ReadFile(name); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), filepath.Join(in, name)) {
				t.Errorf("%s: %v, want ErrNotRegular naming the path", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: reading hangs", name)
		}
	}
}

func TestLimit(t *testing.T) {
	in, _ := tree(t)
	const limit = 4096
	write := func(name string, n int) {
		if err := os.WriteFile(filepath.Join(in, name), bytes.Repeat([]byte("x"), n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("exact", limit)
	write("over", limit+1)
	// A sparse file far past the limit is refused by its size, unread.
	f, err := os.Create(filepath.Join(in, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d := openDir(t, in, limit)
	if b, err := d.ReadFile("exact"); err != nil || len(b) != limit {
		t.Errorf("exact: %d bytes, %v", len(b), err)
	}
	for _, name := range []string{"over", "sparse"} {
		_, err := d.ReadFile(name)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "4 KiB") || !strings.Contains(err.Error(), filepath.Join(in, name)) {
			t.Errorf("%s: %v, want ErrTooLarge naming the path and 4 KiB", name, err)
		}
	}
}

// TestLimitDoesNotTrustSize: a file that grows after it was opened (its
// size said it was small) stops at the limit.
func TestLimitDoesNotTrustSize(t *testing.T) {
	in, _ := tree(t)
	path := filepath.Join(in, "growing")
	if err := os.WriteFile(path, []byte("small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := openDir(t, in, 1<<16)
	f, err := d.Open("growing")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.WriteFile(path, bytes.Repeat([]byte("y"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, f)
	if !errors.Is(err, ErrTooLarge) || n != 1<<16 {
		t.Errorf("read %d bytes, %v; want %d and ErrTooLarge", n, err, 1<<16)
	}
}

// TestLimitEndless reads a real endless regular file (/proc's pagemap
// says size 0 and goes on for the whole address space).
func TestLimitEndless(t *testing.T) {
	f, err := Open("/proc/self/pagemap", 1<<20)
	if err != nil {
		t.Skipf("no pagemap here: %v", err)
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, f)
	if !errors.Is(err, ErrTooLarge) || n != 1<<20 {
		t.Errorf("read %d bytes, %v; want 1 MiB and ErrTooLarge", n, err)
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	in, _ := tree(t)
	fifo := filepath.Join(in, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", "/dev/null", in} {
		_, err := Open(p, MaxCapture)
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want ErrNotRegular naming it", p, err)
		}
	}
}

// TestEscapeRecognised pins os.Root's error for a path leaving the root,
// which isEscape recognises by its text.
func TestEscapeRecognised(t *testing.T) {
	r, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Open("../x")
	var pe *fs.PathError
	if !errors.As(err, &pe) || !isEscape(pe.Err) {
		t.Fatalf("os.Root's escape error changed: %v", err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1 GiB", 64 << 30: "64 GiB", 4096: "4 KiB", 3 << 20: "3 MiB", 1000: "1000 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

// Sub reads a folder from inside it, with the same refusals: a link out of
// it (or out of the top directory), a folder that is a link out; a name it
// did not list is missing, and ".." does not climb out.
func TestSub(t *testing.T) {
	in, secretPath := tree(t)
	if err := os.Symlink(secretPath, filepath.Join(in, "sub", "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../secret", filepath.Join(in, "sub", "up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(in, "outdir")); err != nil {
		t.Fatal(err)
	}
	d := openDir(t, in, 0)
	if _, err := d.Sub("outdir"); !errors.Is(err, ErrOutside) {
		t.Errorf("Sub(outdir -> ..) = %v, want ErrOutside", err)
	}
	sub, err := d.Sub("sub")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if b, err := sub.ReadFile("ok.txt"); err != nil || string(b) != "hello\n" {
		t.Errorf("ok.txt: %q, %v", b, err)
	}
	for _, name := range []string{"abs", "up", "../secret"} {
		if _, err := sub.ReadFile(name); !errors.Is(err, ErrOutside) || !strings.Contains(err.Error(), filepath.Join(in, "sub")) {
			t.Errorf("%s: %v, want ErrOutside naming the path", name, err)
		}
	}
	// Listed once: a file made after Sub is not seen, a missing one is
	// missing, naming its whole path.
	if err := os.WriteFile(filepath.Join(in, "sub", "late.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"late.txt", "missing.txt"} {
		if _, err := sub.Open(name); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(in, "sub", name)) {
			t.Errorf("%s: %v, want ErrNotExist naming the path", name, err)
		}
	}
	if ents, err := sub.ReadDir("."); err != nil || len(ents) < 3 {
		t.Errorf("ReadDir(.) = %v, %v", ents, err)
	}
}
