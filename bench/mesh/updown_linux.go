package meshbench

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/meshtrace/meshtrace/bench/proc"
	"github.com/meshtrace/meshtrace/bench/report"
)

// The benchmarked mesh: 2 nodes x 50 tasks.
const (
	Nodes    = 2
	Replicas = 100
	// Target is the speed-up issue 15 asks for.
	Target = 10.0
	// settle separates the timed runs: the kernel frees the namespaces of
	// a `down` asynchronously, and that work would otherwise be billed to
	// whichever side runs next.
	settle = 2 * time.Second
)

// UpDown is one timed up + down.
type UpDown struct{ Up, Down time.Duration }

// Total is up + down.
func (u UpDown) Total() time.Duration { return u.Up + u.Down }

// Meshtrace times `meshtrace mesh up` (iptables LB, the agent serving
// every task) and `mesh down` of name.
func Meshtrace(bin, name string, nodes, replicas int) (UpDown, error) {
	var r UpDown
	up, err := proc.Check(exec.Command(bin, "mesh", "up", "--name", name, "--nodes", strconv.Itoa(nodes), "--lb", "iptables",
		"--service", fmt.Sprintf("web:8080:80x%d", replicas)))
	if err != nil {
		exec.Command(bin, "mesh", "down", "--name", name).Run()
		return r, err
	}
	down, err := proc.Check(exec.Command(bin, "mesh", "down", "--name", name))
	r.Up, r.Down = up.Wall, down.Wall
	return r, err
}

// Shell times shell-mesh.sh (in dir) up and down of the same mesh.
func Shell(dir, name string, nodes, replicas int) (UpDown, error) {
	var r UpDown
	script := filepath.Join(dir, "shell-mesh.sh")
	up, err := proc.Check(exec.Command("bash", script, "up", name, strconv.Itoa(nodes), strconv.Itoa(replicas)))
	if err != nil {
		exec.Command("bash", script, "down", name).Run()
		return r, err
	}
	down, err := proc.Check(exec.Command("bash", script, "down", name))
	r.Up, r.Down = up.Wall, down.Wall
	return r, err
}

// Line times both, meshtrace first, and returns the mesh-updown line.
func Line(bin, dir, prefix string, logf func(string, ...any)) (report.Line, error) {
	l := report.Line{Name: "mesh-updown"}
	m, err := Meshtrace(bin, prefix+"go", Nodes, Replicas)
	if err != nil {
		return l, err
	}
	logf("meshtrace mesh up %v + down %v", m.Up.Round(time.Millisecond), m.Down.Round(time.Millisecond))
	time.Sleep(settle)
	s, err := Shell(dir, prefix+"sh", Nodes, Replicas)
	if err != nil {
		return l, err
	}
	logf("shell-mesh.sh up %v + down %v", s.Up.Round(time.Millisecond), s.Down.Round(time.Millisecond))
	r := float64(s.Total()) / float64(m.Total())
	l.Set("ratio", r)
	l.Set("ms", ms(m.Total()))
	l.Set("up_ms", ms(m.Up))
	l.Set("down_ms", ms(m.Down))
	l.Set("shell_ms", ms(s.Total()))
	l.Set("shell_up_ms", ms(s.Up))
	l.Set("shell_down_ms", ms(s.Down))
	l.Set("nodes", Nodes)
	l.Set("tasks", Replicas)
	l.Met(fmt.Sprintf("ratio>=%g", Target), r >= Target)
	return l, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
