package testutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PlainIPAddr renders `ip -d addr` output as `ip addr` prints the same
// links: the link/ line loses everything from " promiscuity" on, and the
// detail lines (the kind, "bridge_slave …", "veth …") go; the header,
// inet/inet6, valid_lft and altname lines stay as they are. That is what
// iproute2 6.1 prints without -d: the recorded pairs in fixtures/ (swarm-vm
// ip-addr-plain.txt next to ip-addr.txt, cmdout/docker-shaped and
// cmdout/variants) are byte for byte what this function makes of the -d
// side (TestPlainIPAddr).
func PlainIPAddr(detailed string) string {
	var b strings.Builder
	for line := range strings.SplitAfterSeq(detailed, "\n") {
		body := strings.TrimRight(line, "\n")
		switch {
		case body == "":
			b.WriteString(line)
		case body[0] != ' ':
			b.WriteString(line)
		case strings.HasPrefix(body, "    link/"):
			if i := strings.Index(body, " promiscuity "); i >= 0 {
				body = body[:i]
			}
			b.WriteString(body)
			if strings.HasSuffix(line, "\n") {
				b.WriteString("\n")
			}
		case strings.HasPrefix(body, "    inet "), strings.HasPrefix(body, "    inet6 "),
			strings.HasPrefix(body, "    altname "), strings.HasPrefix(body, "       valid_lft"):
			b.WriteString(line)
		}
	}
	return b.String()
}

// PlainBundle copies the bundle src into a new temporary directory with
// every netns/*/ip-addr.txt rendered by PlainIPAddr: the same node as an
// operator who ran plain `ip addr` would hand it over. Files other than
// ip-addr.txt are copied as they are.
func PlainBundle(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	CopyTree(tb, src, dst, func(rel string, b []byte) []byte {
		if filepath.Base(rel) == "ip-addr.txt" && filepath.Base(filepath.Dir(filepath.Dir(rel))) == "netns" {
			return []byte(PlainIPAddr(string(b)))
		}
		return b
	})
	return dst
}

// CopyTree copies the directory src into dst, passing every file's bytes
// through edit (nil: copied as they are) with its path relative to src.
func CopyTree(tb testing.TB, src, dst string, edit func(rel string, data []byte) []byte) {
	tb.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if edit != nil {
			b = edit(rel, b)
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		tb.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}
