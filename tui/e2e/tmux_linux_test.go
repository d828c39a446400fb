// Package e2e drives the real meshtrace binary's terminal interface in
// tmux (send-keys, capture-pane) on a mesh built by `meshtrace mesh up`:
// open the published port's path, start a probe trace, see the connection
// reach a task, quit and get the shell back. It needs root and tmux.
//
//	go test ./tui/e2e -v
package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// tmux runs tmux on the test's own server socket.
type tmux struct {
	t      *testing.T
	socket string
	target string
}

func (x tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (x tmux) keys(keys ...string) { x.run(append([]string{"send-keys", "-t", x.target}, keys...)...) }

// pane is the visible screen (with escapes when esc is set).
func (x tmux) pane(esc bool) string {
	args := []string{"capture-pane", "-p", "-t", x.target}
	if esc {
		args = append(args, "-e")
	}
	return x.run(args...)
}

// wait polls the screen until it matches every pattern.
func (x tmux) wait(what string, d time.Duration, patterns ...string) string {
	x.t.Helper()
	deadline := time.Now().Add(d)
	var screen string
	for time.Now().Before(deadline) {
		screen = x.pane(false)
		ok := true
		for _, p := range patterns {
			ok = ok && regexp.MustCompile(p).MatchString(screen)
		}
		if ok {
			return screen
		}
		time.Sleep(100 * time.Millisecond)
	}
	x.t.Fatalf("waiting for %s (%q): the screen is\n%s", what, patterns, screen)
	return ""
}

func TestTUIOnMesh(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "tmux")
	bin := testutil.Meshtrace(t)
	name := testutil.Prefix()
	up := exec.Command(bin, "mesh", "up", "--name", name, "--lb", "iptables")
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "mesh", "down", "--name", name).CombinedOutput(); err != nil {
			t.Errorf("mesh down %s: %v\n%s", name, err, out)
		}
	})
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("mesh up: %v\n%s", err, out)
	}

	x := tmux{t: t, socket: "meshtrace-" + name, target: name}
	t.Cleanup(func() { exec.Command("tmux", "-L", x.socket, "kill-server").Run() })
	// NO_COLOR: the screen must carry no colour, and still say everything.
	shell := fmt.Sprintf("NO_COLOR=1 %s tui --mesh %s --node node0 --interval 2s; echo \"EXIT:$?\"; sleep 600", bin, name)
	x.run("new-session", "-d", "-s", name, "-x", "120", "-y", "40", "sh", "-c", shell)

	// The first screen: the published port with its service beside the
	// topology; o draws its path.
	x.wait("the topology and the published port", 30*time.Second, `mesh:`+name+`/node0 · \d+ ns`, `PUBLISHED \(1\)`,
		`o tcp/8080 +web +✓ complete +2 backends`, `HOST \(1\)`, `INGRESS SANDBOX \(1\)`, `TASKS`)
	x.keys("o")
	pathScreen := []string{`tcp/8080 published · ✓ complete · 2 backends`, `DNAT nat/DOCKER-INGRESS`, `docker_gwbridge`, `MARK 0x100`, `IPVS FWM 256 rr`, `SNAT`, `REDIRECT 8080→80`, `remote node`}
	screen := x.wait("the path from the first screen", 10*time.Second, pathScreen...)
	t.Logf("path:\n%s", screen)
	// back to the list of paths, and the same path from it.
	x.keys("Escape")
	x.wait("the published port", 10*time.Second, `tcp/8080 .*complete`)
	x.keys("Enter")
	x.wait("the path", 10*time.Second, pathScreen...)

	x.keys("p")
	screen = x.wait("the probe trace", 90*time.Second, `trace done · 3 connections · #3 ✓ reached`, `● reached`)
	t.Logf("traced path:\n%s", screen)
	if col := x.pane(true); regexp.MustCompile(`\x1b\[(3[0-7]|9[0-7]|38;)`).MatchString(col) {
		t.Errorf("NO_COLOR is set but the screen has colours:\n%q", col)
	}
	x.keys("3")
	screen = x.wait("the connections", 10*time.Second, `TRACE tcp/8080 · done · 3 connections`, `#1 .*✓ reached`, `request hops`, `REDIRECT`)
	t.Logf("trace:\n%s", screen)

	// watch real traffic: t captures without a probe; a curl from the
	// mesh's client shows up; s stops.
	x.keys("2")
	x.keys("t")
	x.wait("the capture to listen", 30*time.Second, `trace capturing · 0 connections`)
	if out, err := exec.Command(bin, "mesh", "exec", "--name", name, "client", "--", "curl", "-s", "-m", "5", "192.168.77.10:8080").CombinedOutput(); err != nil {
		t.Fatalf("curl from the client: %v\n%s", err, out)
	}
	x.wait("the curl's connection", 30*time.Second, `trace capturing · 1 connection · #1 ✓ reached`)
	x.keys("s")
	x.wait("the stopped watch", 30*time.Second, `trace done · 1 connection · #1 ✓ reached`)

	x.keys("q")
	screen = x.wait("the shell after quitting", 10*time.Second, `EXIT:0`)
	if strings.Contains(screen, "meshtrace  1 topology") || strings.Contains(screen, "[3 trace]") {
		t.Errorf("the interface is still on the screen after q (alternate screen not left):\n%s", screen)
	}
}

// Plain `meshtrace` on a terminal opens the interface over this host;
// q gives the shell back.
func TestPlainMeshtraceOpensTUI(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "tmux")
	bin := testutil.Meshtrace(t)
	name := testutil.Prefix()
	x := tmux{t: t, socket: "meshtrace-" + name, target: name}
	t.Cleanup(func() { exec.Command("tmux", "-L", x.socket, "kill-server").Run() })
	x.run("new-session", "-d", "-s", name, "-x", "100", "-y", "30", "sh", "-c", bin+"; echo \"EXIT:$?\"; sleep 600")
	x.wait("the interface", 60*time.Second, `\[1 topology\]`, `live.* · \d+ ns|this host`, `HOST \(1\)`)
	x.keys("?")
	x.wait("the help", 10*time.Second, `help · .*esc closes`, `expand / collapse a namespace`)
	// one key at a time: ESC followed at once by q reads as alt+q.
	x.keys("Escape")
	x.wait("the help to close", 10*time.Second, `↑↓ move · enter open`)
	time.Sleep(200 * time.Millisecond)
	x.keys("q")
	x.wait("the shell after quitting", 10*time.Second, `EXIT:0`)
}

func TestMain(m *testing.M) { testutil.Main(m) }
