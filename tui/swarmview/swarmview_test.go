package swarmview

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/bench/bundles"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/swarm/load"
	"github.com/meshtrace/meshtrace/tui/internal/tuitest"
)

// synthetic is the synthetic swarm of bench/bundles (3 nodes, 2 tasks a
// node, 3 published services), edit applied to its files first.
func synthetic(t *testing.T, edit func(dir string)) []swarm.Node {
	t.Helper()
	dir := t.TempDir()
	if _, err := bundles.WriteSwarm(dir, bundles.SwarmSpec{Nodes: 3, TasksPerNode: 2, Services: 3}); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(dir)
	}
	nodes, err := load.Nodes(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// noDNAT drops node01's DNAT of tcp/30001.
func noDNAT(t *testing.T) func(string) {
	return func(dir string) {
		p := filepath.Join(dir, "node01", "netns", "host", "iptables-save.txt")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out := regexp.MustCompile(`(?m)^.*-A DOCKER-INGRESS -p tcp -m tcp --dport 30001 -j DNAT.*\n`).ReplaceAllString(string(b), "")
		if out == string(b) {
			t.Fatal("no DNAT of tcp/30001 on node01")
		}
		if err := os.WriteFile(p, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestView(t *testing.T) {
	cases := []struct {
		name   string
		broken bool
		keys   []string
	}{
		{"healthy", false, nil},
		// node01 does not DNAT svc01's port: its cell is broken, with
		// swarm check's finding; the cursor on it says why.
		{"no-dnat", true, []string{"down", "right"}},
		// enter: node01's path of tcp/30001, broken at the host.
		{"no-dnat-open", true, []string{"down", "right", "enter"}},
		// esc: back to the matrix, the cursor where it was.
		{"no-dnat-back", true, []string{"down", "right", "enter", "esc"}},
		// a healthy cell opens a complete path.
		{"healthy-open", false, []string{"enter"}},
	}
	for _, c := range cases {
		var edit func(string)
		if c.broken {
			edit = noDNAT(t)
		}
		nodes := synthetic(t, edit)
		for _, sz := range tuitest.Sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", c.name, sz[0], sz[1]), func(t *testing.T) {
				m := New(nodes, WithTitle("swarm test"))
				m = tuitest.Run(t, m, sz[0], sz[1], tuitest.Keys(c.keys...)...)
				screen := tuitest.Plain(m.View())
				wantOpen := strings.HasSuffix(c.name, "-open")
				if m.Open() != wantOpen {
					t.Errorf("open %v, want %v", m.Open(), wantOpen)
				}
				if c.name == "no-dnat" && (!strings.Contains(screen, "BROKEN") || !strings.Contains(screen, "not-published on node01") && !strings.Contains(screen, "dnat")) {
					t.Errorf("the broken cell is not shown:\n%s", screen)
				}
				if c.name == "healthy" && strings.Contains(screen, "BROKEN") {
					t.Errorf("a healthy swarm shows a broken cell:\n%s", screen)
				}
				tuitest.Golden(t, m.View())
			})
		}
	}
}
