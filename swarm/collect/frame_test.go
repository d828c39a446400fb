package collect

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/safefile"
)

// mapSink is a bundle held in memory: folders and files by name.
type mapSink struct {
	dirs  map[string]bool
	files map[string]string
}

func newMapSink() *mapSink { return &mapSink{dirs: map[string]bool{}, files: map[string]string{}} }

func (m *mapSink) Mkdir(name string) error {
	if m.dirs[name] || m.files[name] != "" {
		return fmt.Errorf("%s exists", name)
	}
	if d := path.Dir(name); d != "." && !m.dirs[d] {
		return fmt.Errorf("%s: no folder %s", name, d)
	}
	m.dirs[name] = true
	return nil
}

func (m *mapSink) WriteFile(name string, data []byte) error {
	if _, ok := m.files[name]; ok || m.dirs[name] {
		return fmt.Errorf("%s exists", name)
	}
	if d := path.Dir(name); d != "." && !m.dirs[d] {
		return fmt.Errorf("%s: no folder %s", name, d)
	}
	m.files[name] = string(data)
	return nil
}

var _ inspect.BundleSink = (*mapSink)(nil)

// encode frames a bundle of the given files (folders made as needed).
func encode(t testing.TB, h Header, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	e, err := NewEncoder(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]bool{}
	for _, name := range sortedKeys(files) {
		for _, d := range parents(name) {
			if !made[d] {
				made[d] = true
				if err := e.Mkdir(d); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := e.WriteFile(name, []byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func parents(name string) []string {
	var out []string
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

func TestFrameRoundTrip(t *testing.T) {
	files := map[string]string{
		"netns/host/ip-addr.txt":  "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n",
		"netns/ingress_sbox/x":    strings.Repeat("0123456789", 10000), // many lines
		"docker/networks.json":    "[]\n",
		"NOTES.txt":               "a note\n",
		"netns/host/empty-file.t": "",
	}
	frame := encode(t, Header{Node: "node-1.example", ID: "abc123XYZ"}, files)
	for i, l := range strings.Split(string(frame), "\n") {
		if len(l) > maxLine {
			t.Fatalf("line %d is %d bytes long, more than a log line should carry", i+1, len(l))
		}
	}
	// Lines the task printed before (and after) the frame are skipped.
	log := append([]byte("some warning\n"), frame...)
	log = append(log, "trailing\n"...)
	f, err := Decode(bytes.NewReader(log), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Node != "node-1.example" || f.ID != "abc123XYZ" {
		t.Errorf("header %+v", f.Header)
	}
	out := newMapSink()
	n, err := Extract(f.Tar, out, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(files) {
		t.Errorf("%d files written, want %d", n, len(files))
	}
	if d := cmp.Diff(files, out.files); d != "" {
		t.Errorf("extracted (-sent +got):\n%s", d)
	}
}

// TestFrameDecodeRefuses: a frame cut short, altered, too large, or with
// lines too long is an error naming what is wrong, never a bundle.
func TestFrameDecodeRefuses(t *testing.T) {
	good := string(encode(t, Header{Node: "n1"}, map[string]string{"netns/host/ip-addr.txt": strings.Repeat("x", 5000)}))
	lines := strings.Split(strings.TrimSuffix(good, "\n"), "\n")
	body := strings.Join(lines[1:len(lines)-1], "\n") + "\n"
	trailer := lines[len(lines)-1] + "\n"
	altered := []byte(good)
	altered[len(lines[0])+10] ^= 1 // a base64 letter changed: still base64
	if altered[len(lines[0])+10] == '\n' {
		t.Fatal("test changed a newline")
	}
	cases := []struct {
		name, log string
		lim       Limits
		want      string
	}{
		{"empty", "", Limits{}, "no meshtrace-bundle header"},
		{"no header", "hello\nworld\n", Limits{}, "no meshtrace-bundle header"},
		{"cut short", lines[0] + "\n" + body, Limits{}, "cut short"},
		{"no body", lines[0] + "\n" + trailer, Limits{}, "trailer says"},
		{"altered", string(altered), Limits{}, ""},
		{"too large", good, Limits{Bytes: 1000}, "larger than"},
		{"long line", lines[0] + "\n" + strings.Repeat("A", 5000) + "\n" + trailer, Limits{}, "longer than"},
		{"not base64", lines[0] + "\n!!!!\n" + trailer, Limits{}, "illegal base64"},
		{"unsafe node", "meshtrace-bundle v1 node=../../etc\n" + body + trailer, Limits{}, "not a safe folder name"},
		{"node with slash", "meshtrace-bundle v1 node=a/b\n" + body + trailer, Limits{}, "not a safe folder name"},
		{"bad id", "meshtrace-bundle v1 node=a id=x/y\n" + body + trailer, Limits{}, "not a swarm id"},
		{"bad bytes", lines[0] + "\n" + body + "meshtrace-bundle end bytes=x sha256=00\n", Limits{}, "bytes="},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Decode(strings.NewReader(c.log), c.lim)
			if err == nil {
				t.Fatalf("decoded %d bytes of node %q, want an error", len(f.Tar), f.Node)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
		})
	}
}

// rawTar is a tar stream of the given headers (bodies of their size).
func rawTar(t *testing.T, hs ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hs {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return b.Bytes()
}

// TestExtractRefuses: a hostile tar writes nothing outside its folder:
// no parent, absolute or backslashed path, no link, device or fifo, no
// name twice, no more entries than the limit.
func TestExtractRefuses(t *testing.T) {
	reg := func(name string) tar.Header {
		return tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 3, Mode: 0o600}
	}
	cases := []struct {
		name string
		hs   []tar.Header
		lim  Limits
		want string
	}{
		{"parent", []tar.Header{reg("../x")}, Limits{}, "not a safe relative path"},
		{"inner parent", []tar.Header{reg("netns/../../x")}, Limits{}, "not a safe relative path"},
		{"absolute", []tar.Header{reg("/etc/passwd")}, Limits{}, "not a safe relative path"},
		{"backslash", []tar.Header{reg(`netns\..\x`)}, Limits{}, "not a safe relative path"},
		{"dot", []tar.Header{{Typeflag: tar.TypeDir, Name: "./"}}, Limits{}, "not a safe relative path"},
		{"symlink", []tar.Header{{Typeflag: tar.TypeSymlink, Name: "netns", Linkname: "/etc"}}, Limits{}, "neither a folder nor a regular file"},
		{"hardlink", []tar.Header{{Typeflag: tar.TypeLink, Name: "x", Linkname: "/etc/shadow"}}, Limits{}, "neither"},
		{"fifo", []tar.Header{{Typeflag: tar.TypeFifo, Name: "x"}}, Limits{}, "neither"},
		{"twice", []tar.Header{reg("a"), reg("a")}, Limits{}, "exists"},
		{"file then folder", []tar.Header{reg("a"), reg("a/b")}, Limits{}, "exists"},
		{"folder then file", []tar.Header{{Typeflag: tar.TypeDir, Name: "a/"}, reg("a")}, Limits{}, "folder of that name"},
		{"too many", []tar.Header{reg("a"), reg("b"), reg("c")}, Limits{Entries: 2}, "more than 2 entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Extract(rawTar(t, c.hs...), newMapSink(), c.lim)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to say %q", err, c.want)
			}
		})
	}
}

// TestExtractIntoDirectory: through safefile, a bundle lands in its
// folder, 0600 files in 0700 folders, and a name repeated is refused.
func TestExtractIntoDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	out, err := safefile.CreateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	f, err := Decode(bytes.NewReader(encode(t, Header{Node: "n"}, map[string]string{"netns/host/ip-addr.txt": "x"})), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(f.Tar, out, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(f.Tar, out, Limits{}); err == nil {
		t.Error("the same bundle extracted twice into one folder: want an error (files are new)")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(f, Header{Node: "n1", ID: "x1"}, map[string]string{"netns/host/ip-addr.txt": "abc", "NOTES.txt": "n\n"}))
	f.Add([]byte("meshtrace-bundle v1 node=a\nAAAA\nmeshtrace-bundle end bytes=3 sha256=00\n"))
	f.Add([]byte("junk\nmeshtrace-bundle v1 node=..\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{Bytes: 1 << 20, Entries: 100}
		fr, err := Decode(bytes.NewReader(data), lim)
		if err != nil {
			return
		}
		if !SafeName(fr.Node) || int64(len(fr.Tar)) > lim.Bytes {
			t.Fatalf("decoded an unsafe frame: node %q, %d bytes", fr.Node, len(fr.Tar))
		}
		out := newMapSink()
		if _, err := Extract(fr.Tar, out, lim); err != nil && errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
		for name := range out.files {
			if !isSafe(name) {
				t.Fatalf("extracted an unsafe name %q", name)
			}
		}
	})
}

func isSafe(name string) bool {
	return !strings.HasPrefix(name, "/") && !strings.Contains(name, "..") && !strings.Contains(name, `\`)
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
