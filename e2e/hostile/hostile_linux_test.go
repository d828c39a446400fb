// Package hostile runs every reading command of the real binary over the
// hostile-input corpus (fixtures/hostile, plus what only exists at test
// time: FIFOs, links out of the bundle, /dev/zero, sparse huge files, a
// device node) with a deadline and a memory bound. Each run must end with
// a clear error naming the file (and line where there is one) and a
// non-zero exit, or, for hostile content that is valid input, with output
// free of raw control characters; never a panic, a hang, unbounded memory
// or a byte written outside the tool's own output.
package hostile_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const (
	corpus  = "../../fixtures/hostile"
	modern  = "../../fixtures/bundles/modern"
	capture = "../../fixtures/captures/mesh-tcp.pcapng"

	// deadline bounds one run: every case reads a few KB, or refuses.
	deadline = 60 * time.Second
	// peakLimit bounds one run's peak RSS (ru_maxrss); killAt stops a run
	// that heads for the machine's memory (polled from /proc/PID/status).
	peakLimit = 512 << 20
	killAt    = 2 << 30
	// goMemLimit is the runtime's soft limit the runs get.
	goMemLimit = "256MiB"
)

// expect is what a run must end with.
type expect int

const (
	// refused: a non-zero exit and an error naming the file (want).
	refused expect = iota
	// named: the file and line named (want), on standard error with a
	// non-zero exit, or among the namespace's errors of the output (the
	// optional files' lines that are not understood).
	named
	// clean: valid input holding hostile strings: read (any exit but an
	// error), and no raw control character in the output (want: printed
	// escaped).
	clean
	// survives: any end but a crash, a hang or raw control characters.
	survives
)

// the bundle files, by their path in a bundle; lines says whether its
// reader names a line.
var slots = []struct {
	path  string
	lines bool
}{
	{"netns/host/ip-addr.txt", true}, {"netns/host/iptables-save.txt", true}, {"netns/ingress_sbox/ipvsadm.txt", true},
	{"netns/ingress_sbox/ipvsadm-timeout.txt", true}, {"netns/host/ip-route.txt", true}, {"netns/host/ip-neigh.txt", true},
	{"netns/host/bridge-fdb.txt", true}, {"netns/host/sysctl.txt", true}, {"netns/host/ss.txt", true},
	{"netns/host/conntrack.txt", true}, {"netns/host/iptables-legacy-save.txt", true}, {"netns/host/ip-xfrm-state.txt", true},
	{"netns/host/ip-xfrm-policy.txt", true}, {"netns/host/snmp.txt", true}, {"netns/host/netstat.txt", true},
	{"netns/host/nf_conntrack-stat.txt", true}, {"netns/host/ip-stats.txt", true}, {"netns/ingress_sbox/ipvsadm-stats.txt", true},
	{"docker/networks.json", false}, {"docker/containers.json", false}, {"docker/services.json", false},
	{"NOTES.txt", false},
}

// bundleCase is a bundle made from the modern fixture by plant.
type bundleCase struct {
	name  string
	plant func(t *testing.T, bundle, outside string)
	want  []string // substrings; BUNDLE stands for the bundle's path
	exp   expect
}

// copyFile plants src at dst (a path in the bundle).
func copyFile(src string) func(string) func(*testing.T, string, string) {
	return func(dst string) func(*testing.T, string, string) {
		return func(t *testing.T, bundle, _ string) {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(bundle, dst), b)
		}
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// special plants something made at test time at a bundle path.
func special(t *testing.T, path string, make func(string) error) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := make(path); err != nil {
		t.Fatal(err)
	}
}

func sparse(size int64) func(string) error {
	return func(p string) error {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(size)
	}
}

// listing plants src as the host's iptables-nat.txt in place of its
// iptables-save.txt; listingText plants text.
func listing(src string) func(*testing.T, string, string) {
	return func(t *testing.T, b, o string) {
		os.Remove(filepath.Join(b, "netns/host/iptables-save.txt"))
		copyFile(src)("netns/host/iptables-nat.txt")(t, b, o)
	}
}

func listingText(text string) func(*testing.T, string, string) {
	return func(t *testing.T, b, _ string) {
		os.Remove(filepath.Join(b, "netns/host/iptables-save.txt"))
		write(t, filepath.Join(b, "netns/host/iptables-nat.txt"), []byte(text))
	}
}

func link(target string) func(string) error {
	return func(p string) error { return os.Symlink(target, p) }
}

const secretText = "root:$6$hostile-corpus-secret:19000:0:99999:7:::"

func bundleCases(t *testing.T) []bundleCase {
	var cs []bundleCase
	for _, s := range slots {
		p := "BUNDLE/" + s.path
		line := p
		if s.lines {
			line += ":1:"
		}
		garbage := refused
		switch s.path {
		case "NOTES.txt":
			garbage = clean // free text, printed escaped
		case "netns/host/sysctl.txt":
			garbage = named // sysctl -a prints lines the parser keeps as errors
		}
		gwant := []string{line}
		if garbage == clean {
			gwant = nil
		}
		cs = append(cs,
			bundleCase{"garbage " + s.path, func(t *testing.T, b, o string) {
				copyFile(filepath.Join(corpus, "bundle/garbage.bin"))(s.path)(t, b, o)
			}, gwant, garbage},
			bundleCase{"nul " + s.path, func(t *testing.T, b, o string) { copyFile(filepath.Join(corpus, "bundle/nul.bin"))(s.path)(t, b, o) }, gwant, garbage},
			bundleCase{"fifo " + s.path, func(t *testing.T, b, _ string) {
				special(t, filepath.Join(b, s.path), func(p string) error { return syscall.Mkfifo(p, 0o644) })
			}, []string{p, "FIFO"}, refused},
			bundleCase{"link out " + s.path, func(t *testing.T, b, o string) {
				special(t, filepath.Join(b, s.path), link(filepath.Join(o, "shadow")))
			}, []string{p, "leads out of"}, refused},
			bundleCase{"sparse 2 GiB " + s.path, func(t *testing.T, b, _ string) {
				special(t, filepath.Join(b, s.path), sparse(2<<30))
			}, []string{p, "1 GiB"}, refused},
		)
	}
	for _, dev := range []string{"/dev/zero", "/dev/urandom"} {
		for _, s := range []string{"netns/host/iptables-save.txt", "netns/host/conntrack.txt", "docker/containers.json", "NOTES.txt"} {
			cs = append(cs, bundleCase{dev + " " + s, func(t *testing.T, b, _ string) {
				special(t, filepath.Join(b, s), link(dev))
			}, []string{"BUNDLE/" + s, "leads out of"}, refused})
		}
	}
	from := func(f string) string { return filepath.Join(corpus, "bundle", f) }
	cs = append(cs,
		bundleCase{"netns/rootfs -> /", func(t *testing.T, b, _ string) {
			special(t, filepath.Join(b, "netns/rootfs"), link("/"))
		}, []string{"BUNDLE/netns/rootfs", "leads out of"}, refused},
		bundleCase{"netns/host outside", func(t *testing.T, b, o string) {
			os.RemoveAll(filepath.Join(b, "netns/host"))
			special(t, filepath.Join(b, "netns/host"), link(o))
		}, []string{"BUNDLE/netns/host", "leads out of"}, refused},
		bundleCase{"docker outside", func(t *testing.T, b, o string) {
			os.RemoveAll(filepath.Join(b, "docker"))
			special(t, filepath.Join(b, "docker"), link(o))
		}, []string{"BUNDLE/docker", "leads out of"}, refused},
		bundleCase{"long line", func(t *testing.T, b, _ string) {
			write(t, filepath.Join(b, "netns/host/iptables-save.txt"), bytes.Repeat([]byte("x"), 16<<20))
		}, []string{"BUNDLE/netns/host/iptables-save.txt:1:"}, refused},
		bundleCase{"truncated iptables-save", func(t *testing.T, b, o string) {
			copyFile(from("truncated-iptables-save.txt"))("netns/host/iptables-save.txt")(t, b, o)
		}, []string{"BUNDLE/netns/host/iptables-save.txt:"}, refused},
		bundleCase{"bad rule arguments", func(t *testing.T, b, o string) {
			copyFile(from("bad-rules-iptables-save.txt"))("netns/host/iptables-save.txt")(t, b, o)
		}, []string{
			"BUNDLE/netns/host/iptables-save.txt:5", "BUNDLE/netns/host/iptables-save.txt:6", "BUNDLE/netns/host/iptables-save.txt:7",
			"BUNDLE/netns/host/iptables-save.txt:8", "BUNDLE/netns/host/iptables-save.txt:9", "BUNDLE/netns/host/iptables-save.txt:10",
			"BUNDLE/netns/host/iptables-save.txt:11", "BUNDLE/netns/host/iptables-save.txt:12",
		}, named},
		bundleCase{"bad json", func(t *testing.T, b, o string) { copyFile(from("bad-networks.json"))("docker/networks.json")(t, b, o) },
			[]string{"BUNDLE/docker/networks.json", "line 1 col"}, refused},
		bundleCase{"truncated json", func(t *testing.T, b, o string) {
			copyFile(from("truncated-containers.json"))("docker/containers.json")(t, b, o)
		}, []string{"BUNDLE/docker/containers.json"}, refused},
		bundleCase{"deep json", func(t *testing.T, b, o string) { copyFile(from("deep.json"))("docker/services.json")(t, b, o) },
			[]string{"BUNDLE/docker/services.json"}, refused},
		bundleCase{"control characters in ip addr", func(t *testing.T, b, o string) {
			copyFile(from("control-ip-addr.txt"))("netns/host/ip-addr.txt")(t, b, o)
		}, []string{`docker_gw\x1b[2J`}, clean},
		// iptables-TABLE.txt listings are read where iptables-save.txt is
		// not there
		bundleCase{"garbage iptables-nat.txt", listing(from("garbage.bin")),
			[]string{"BUNDLE/netns/host/iptables-nat.txt:1:"}, refused},
		bundleCase{"iptables -L without -v", listingText("Chain PREROUTING (policy ACCEPT)\ntarget prot opt source destination\nDNAT tcp -- anywhere !db.example.com tcp dpt:http to:1.2.3.4:80\n"),
			nil, clean},
		bundleCase{"iptables -L without -v, a cut rule", listingText("Chain PREROUTING (policy ACCEPT)\ntarget prot opt source destination\nDNAT tcp --\n"),
			[]string{"BUNDLE/netns/host/iptables-nat.txt:3:", "want [num] target prot opt source destination"}, refused},
		bundleCase{"a listing of another table", listingText("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n"),
			[]string{"BUNDLE/netns/host/iptables-nat.txt:2:", "another table"}, refused},
		bundleCase{"bad rule arguments in a listing", listingText("-P PREROUTING ACCEPT\n-A PREROUTING -p tcp -j DNAT --to-destination 1.2.3.4:70000\n-A PREROUTING -j MARK --set-xmark zzz\n"),
			[]string{"BUNDLE/netns/host/iptables-nat.txt:2", "BUNDLE/netns/host/iptables-nat.txt:3"}, named},
		bundleCase{"control characters in a listing", listingText("Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)\n pkts bytes target prot opt in out source destination\n 0 0 ACCEPT 6 -- *  *  0.0.0.0/0 0.0.0.0/0 /* \x1b[2J */\n"),
			nil, clean},
		bundleCase{"fifo iptables-nat.txt", func(t *testing.T, b, _ string) {
			os.Remove(filepath.Join(b, "netns/host/iptables-save.txt"))
			special(t, filepath.Join(b, "netns/host/iptables-nat.txt"), func(p string) error { return syscall.Mkfifo(p, 0o644) })
		}, []string{"BUNDLE/netns/host/iptables-nat.txt", "FIFO"}, refused},
		bundleCase{"control characters in ip -s link and ip xfrm", func(t *testing.T, b, _ string) {
			write(t, filepath.Join(b, "netns/host/ip-stats.txt"), []byte("1: eth\x1b[2J: <UP> mtu 1500\n    RX: bytes packets\n    1 2\n"))
			write(t, filepath.Join(b, "netns/host/ip-xfrm-state.txt"), []byte("src 1.1.1.1 dst 2.2.2.2\n\tproto esp spi 0x1 reqid 1 mode transport\n\taead a\x1b[2J\x07 0x01 64\n"))
		}, nil, clean},
		bundleCase{"control characters in a rule", func(t *testing.T, b, o string) {
			copyFile(from("control-iptables-save.txt"))("netns/host/iptables-save.txt")(t, b, o)
		}, nil, clean},
		bundleCase{"control characters in notes", func(t *testing.T, b, o string) { copyFile(from("control-notes.txt"))("NOTES.txt")(t, b, o) },
			nil, clean},
		bundleCase{"control characters in docker names", func(t *testing.T, b, o string) {
			copyFile(from("control-networks.json"))("docker/networks.json")(t, b, o)
		}, nil, clean},
		bundleCase{"control characters in a namespace name", func(t *testing.T, b, _ string) {
			if err := os.Rename(filepath.Join(b, "netns/09cd513d96a2"), filepath.Join(b, "netns/task\x1b[2J\nFORGED line")); err != nil {
				t.Fatal(err)
			}
		}, []string{`task\x1b[2J\nFORGED line`}, clean},
	)
	if os.Geteuid() == 0 {
		cs = append(cs, bundleCase{"device node", func(t *testing.T, b, _ string) {
			special(t, filepath.Join(b, "netns/host/iptables-save.txt"), func(p string) error {
				return syscall.Mknod(p, syscall.S_IFCHR|0o644, 1<<8|5) // /dev/zero's numbers
			})
		}, []string{"BUNDLE/netns/host/iptables-save.txt", "character device"}, refused})
	}
	return cs
}

// TestHostileBundles runs inspect, path and doctor --from over each
// hostile bundle, and diff between it and the clean one.
func TestHostileBundles(t *testing.T) {
	defer logPeak(t)
	bin := testutil.Meshtrace(t)
	modern := abs(t, modern)
	for _, tc := range bundleCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			bundle, outside := filepath.Join(top, "bundle"), filepath.Join(top, "outside")
			if err := os.CopyFS(bundle, os.DirFS(modern)); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(outside, "shadow"), []byte(secretText+"\n"))
			tc.plant(t, bundle, outside)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "BUNDLE", bundle)
			}
			for _, args := range [][]string{
				{"inspect", "--from", bundle},
				{"path", "--from", bundle, "--port", "8080"},
				{"doctor", "--from", bundle},
				{"inspect", "--from", bundle, "-o", "json"},
				{"diff", modern, bundle},
				{"diff", "-o", "json", bundle, modern},
			} {
				exp, w := tc.exp, want
				if exp != refused && args[0] != "inspect" {
					// Only inspect lists every name and a namespace's errors.
					w = nil
					if exp == named {
						exp = survives
					}
				}
				check(t, runLimited(t, bin, top, args...), exp, w)
			}
		})
	}
}

// TestHostileCaptures runs replay over each hostile capture, alone and
// with a bundle.
func TestHostileCaptures(t *testing.T) {
	defer logPeak(t)
	bin := testutil.Meshtrace(t)
	modern := abs(t, modern)
	ents, err := os.ReadDir(filepath.Join(corpus, "captures"))
	if err != nil {
		t.Fatal(err)
	}
	type captureCase struct {
		name  string
		plant func(t *testing.T, path string)
		want  []string
		exp   expect
	}
	var cs []captureCase
	for _, e := range ents {
		src := filepath.Join(corpus, "captures", e.Name())
		c := captureCase{e.Name(), func(t *testing.T, p string) {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			write(t, p, b)
		}, []string{"CAPTURE"}, refused}
		switch {
		case strings.HasPrefix(e.Name(), "block-length-"), e.Name() == "block-trailer.pcapng":
			c.want = append(c.want, "bad block length")
		case e.Name() == "block-cut.pcapng":
			c.want = append(c.want, "truncated")
		case e.Name() == "garbage-frames.pcap":
			c.want = append(c.want, "nothing to analyse", "50 not IPv4")
		case e.Name() == "control-ifname.pcapng":
			c.want, c.exp = []string{`eth\x1b[2J`}, clean
		}
		cs = append(cs, c)
	}
	cs = append(cs,
		captureCase{"fifo", func(t *testing.T, p string) { special(t, p, func(p string) error { return syscall.Mkfifo(p, 0o644) }) },
			[]string{"CAPTURE", "FIFO"}, refused},
		captureCase{"/dev/zero", func(t *testing.T, p string) { special(t, p, link("/dev/zero")) },
			[]string{"CAPTURE", "character device"}, refused},
		captureCase{"/dev/urandom", func(t *testing.T, p string) { special(t, p, link("/dev/urandom")) },
			[]string{"CAPTURE", "character device"}, refused},
		captureCase{"sparse 100 GiB", func(t *testing.T, p string) { special(t, p, sparse(100<<30)) },
			[]string{"CAPTURE", "64 GiB"}, refused},
		captureCase{"directory", func(t *testing.T, p string) { special(t, p, func(p string) error { return os.Mkdir(p, 0o755) }) },
			[]string{"CAPTURE", "directory"}, refused},
		// A valid pcapng followed by a zero-filled sparse tail: a bad block
		// length at once, not a long read.
		captureCase{"zero tail", func(t *testing.T, p string) {
			b, err := os.ReadFile(capture)
			if err != nil {
				t.Fatal(err)
			}
			write(t, p, b)
			if err := os.Truncate(p, 4<<30); err != nil {
				t.Fatal(err)
			}
		}, []string{"CAPTURE", "bad block length 0"}, refused},
	)
	for _, tc := range cs {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			cap := filepath.Join(top, "in.pcap")
			tc.plant(t, cap)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "CAPTURE", cap)
			}
			for _, args := range [][]string{
				{"replay", cap},
				{"replay", cap, "--from", modern},
				{"replay", cap, "-o", "json"},
				// a node named with a terminal escape (NODE=FILE)
				{"replay", "evil\x1b[2J=" + cap},
			} {
				check(t, runLimited(t, bin, top, args...), tc.exp, want)
			}
		})
	}
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type result struct {
	args           []string
	stdout, stderr string
	code           int
	peak           int64 // bytes
	killed         string
}

// runLimited runs the binary with a deadline and a memory bound, in an
// empty working directory, and checks nothing under watch (and nothing
// in the working directory) changed.
func runLimited(t *testing.T, bin, watch string, args ...string) result {
	t.Helper()
	before := tree(t, watch)
	cwd := t.TempDir()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "GOMEMLIMIT="+goMemLimit, "NO_COLOR=1")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	r := result{args: args, code: -1}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(deadline)
wait:
	for {
		select {
		case <-done:
			break wait
		case <-timeout:
			r.killed = fmt.Sprintf("still running after %s (a hang)", deadline)
			cmd.Process.Kill()
			<-done
			break wait
		case <-tick.C:
			if hwm := vmHWM(cmd.Process.Pid); hwm > killAt {
				r.killed = fmt.Sprintf("peak RSS %d MiB, past %d MiB", hwm>>20, killAt>>20)
				cmd.Process.Kill()
				<-done
				break wait
			}
		}
	}
	r.stdout, r.stderr = out.String(), errb.String()
	if ps := cmd.ProcessState; ps != nil {
		r.code = ps.ExitCode()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.peak = ru.Maxrss << 10
		}
	}
	if after := tree(t, watch); after != before {
		t.Errorf("%q changed files it reads:\nbefore:\n%s\nafter:\n%s", args, before, after)
	}
	if left := tree(t, cwd); left != "" {
		t.Errorf("%q wrote into its working directory:\n%s", args, left)
	}
	return r
}

// vmHWM is a process's peak RSS so far, 0 when unknown.
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// tree lists every entry under dir with its type, mode, size and mtime.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", p, st.Mode(), st.Size(), st.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// maxPeak is the highest peak RSS of the runs so far.
var maxPeak struct {
	bytes int64
	args  []string
}

func logPeak(t *testing.T) {
	t.Logf("highest peak RSS of a run: %d MiB (%q)", maxPeak.bytes>>20, maxPeak.args)
}

func check(t *testing.T, r result, exp expect, want []string) {
	t.Helper()
	if r.peak > maxPeak.bytes {
		maxPeak.bytes, maxPeak.args = r.peak, r.args
	}
	both := r.stdout + r.stderr
	// JSON stays as encoding/json writes it (it escapes C0 controls only).
	json := slices.Contains(r.args, "json")
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%q: %s\nexit %d\nstderr: %.600q\nstdout: %.600q", r.args, fmt.Sprintf(format, args...), r.code, r.stderr, r.stdout)
	}
	if r.killed != "" {
		fail("killed: %s", r.killed)
		return
	}
	if r.peak > peakLimit {
		fail("peak RSS %d MiB, past the %d MiB bound", r.peak>>20, peakLimit>>20)
	}
	for _, crash := range []string{"panic:", "goroutine ", "fatal error", "runtime error", "SIGSEGV"} {
		if strings.Contains(both, crash) {
			fail("crashed (%q)", crash)
		}
	}
	if r.code < 0 {
		fail("killed by a signal")
	}
	if strings.Contains(both, "hostile-corpus-secret") {
		fail("printed the content of a file outside the bundle")
	}
	for i, c := range both {
		if (c < 0x20 && c != '\n' && c != '\t') || !json && (c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x202e) {
			fail("raw control character %U at byte %d", c, i)
			break
		}
	}
	for _, l := range strings.Split(both, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "FORGED") && !json {
			fail("a newline of the input forged the line %q", l)
		}
	}
	switch exp {
	case refused:
		if r.code == 0 {
			fail("exit 0, want an error")
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				fail("the error does not say %q", w)
			}
		}
	case named:
		if json {
			return
		}
		for _, w := range want {
			if !strings.Contains(both, w) {
				fail("%q is not named", w)
			}
		}
	case clean:
		if r.code != 0 && strings.HasPrefix(r.stderr, "meshtrace: ") {
			fail("valid input refused")
		}
		for _, w := range want {
			if !json && !strings.Contains(both, w) {
				fail("%q is not printed (escaped)", w)
			}
		}
	}
}
