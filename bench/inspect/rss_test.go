package inspectbench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBigIptablesSaveRSS reads a 200 MB iptables-save (2.9 million rules:
// the recorded docker-shaped rule lines over and over) with `meshtrace
// inspect --from` and logs the process's peak RSS: the parsers stream, so
// memory follows what the model keeps (rule texts and their typed
// fields), not the file. MESHTRACE_BENCH=1 (it writes 200 MB and takes
// about 1.5 GB).
func TestBigIptablesSaveRSS(t *testing.T) {
	if os.Getenv("MESHTRACE_BENCH") == "" {
		t.Skip("set MESHTRACE_BENCH=1 to read a 200 MB iptables-save")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "meshtrace")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/meshtrace").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	host := filepath.Join(dir, "bundle", "netns", "host")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	fixture := filepath.Join("..", "..", "fixtures", "cmdout", "docker-shaped", "netns")
	addr, err := os.ReadFile(filepath.Join(fixture, "host", "ip-addr.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "ip-addr.txt"), addr, 0o644); err != nil {
		t.Fatal(err)
	}
	rules, size := bigSave(t, fixture, filepath.Join(host, "iptables-save.txt"), 200<<20)

	start := time.Now()
	cmd := exec.Command(bin, "inspect", "--from", filepath.Join(dir, "bundle"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	t.Logf("%d MB, %d rules: peak RSS %d MB (%.1f x the file), %.1f s wall, %.1f s user",
		size>>20, rules, ru.Maxrss>>10, float64(ru.Maxrss<<10)/float64(size), wall.Seconds(), time.Duration(ru.Utime.Nano()).Seconds())
}

// bigSave writes an iptables-save -c of at least size bytes out of the
// fixture's rule lines and returns the number of rules and the size.
func bigSave(t *testing.T, fixture, file string, size int) (rules, n int) {
	t.Helper()
	var lines []string
	chains := map[string]bool{}
	var order []string
	for _, ns := range []string{"host", "ingress_sbox", "7f3c9a1e5b2d"} {
		b, err := os.ReadFile(filepath.Join(fixture, ns, "iptables-save-c.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "[") {
				continue
			}
			lines = append(lines, l)
			_, rest, _ := strings.Cut(l, "] -A ")
			c, _, _ := strings.Cut(rest, " ")
			if !chains[c] {
				chains[c] = true
				order = append(order, c)
			}
		}
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	n, _ = fmt.Fprintf(w, "*filter\n")
	for _, c := range order {
		k, _ := fmt.Fprintf(w, ":%s ACCEPT [0:0]\n", c)
		n += k
	}
	for ; n < size; rules++ {
		k, _ := w.WriteString(lines[rules%len(lines)] + "\n")
		n += k
	}
	k, _ := w.WriteString("COMMIT\n")
	n += k
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return rules, n
}
