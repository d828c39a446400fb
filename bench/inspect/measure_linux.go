package inspectbench

import (
	"fmt"
	"time"

	"github.com/meshtrace/meshtrace/bench/report"
	"github.com/meshtrace/meshtrace/inspect"
)

// Sizes of the two measured nodes.
const (
	Small = 200
	Large = 2000
)

// Targets of issue 15.
const (
	TargetRatio      = 40.0
	TargetFloorRatio = 1.5
	TargetGrowth     = 1.3
)

// Options tune a measure.
type Options struct {
	// Rounds is how many times each side is timed (best of; default 3).
	Rounds int
	// ScriptDir holds operator-loop.sh (default bench/inspect).
	ScriptDir string
	// Logf gets progress lines (nil: none).
	Logf func(format string, a ...any)
	// Profile, when set, runs f under a CPU profile named name.
	Profile func(name string, f func() error) error
}

func (o *Options) defaults() {
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.ScriptDir == "" {
		o.ScriptDir = "bench/inspect"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Sample is one node's best costs.
type Sample struct {
	Namespaces  int
	Live, Floor Cost
	// SharedFloor is the floor through /proc/sys/net itself.
	SharedFloor Cost
	Shell       Cost // zero when not run
	Stats       FloorStats
	Build       time.Duration
}

// PerNS is the live read's wall time per namespace.
func (s Sample) PerNS() time.Duration { return s.Live.Wall / time.Duration(s.Namespaces) }

// FloorPerNS is the floor's wall time per namespace.
func (s Sample) FloorPerNS() time.Duration { return s.Floor.Wall / time.Duration(s.Namespaces) }

// phaseUS is the floor's time in phase i per namespace, in µs (summed
// over the workers: time spent, not wall time).
func (s Sample) phaseUS(i int) float64 {
	return float64(s.Stats.Phases[i]) / float64(time.Microsecond) / float64(s.Namespaces)
}

// Run builds a node of n namespaces and times, round after round, the
// live reader, the floor and (shell) the operator loop; it keeps the best
// round of each and tears the node down.
func Run(n int, shell bool, o Options) (s Sample, err error) {
	o.defaults()
	t0 := time.Now()
	nd, err := Build(n)
	if err != nil {
		return s, err
	}
	defer func() {
		if cerr := nd.Close(); err == nil {
			err = cerr
		}
	}()
	s.Namespaces, s.Build = nd.Namespaces(), time.Since(t0)
	o.Logf("built %d namespaces in %v", s.Namespaces, s.Build.Round(time.Millisecond))
	if shell {
		if err := nd.Link(); err != nil {
			return s, err
		}
	}
	// A first read of each warms the caches (dentries, the nf_tables
	// module's lookups) for all: it is not timed.
	if _, _, err := nd.Live(inspect.FirewallAuto); err != nil {
		return s, err
	}
	if _, _, err := nd.Floor(); err != nil {
		return s, err
	}
	if _, _, err := nd.FloorSharedProc(); err != nil {
		return s, err
	}
	for i := range o.Rounds {
		_, cl, err := nd.Live(inspect.FirewallAuto)
		if err != nil {
			return s, err
		}
		st, cf, err := nd.Floor()
		if err != nil {
			return s, err
		}
		_, cs, err := nd.FloorSharedProc()
		if err != nil {
			return s, err
		}
		s.Live, s.Floor, s.Stats = Best(s.Live, cl), Best(s.Floor, cf), st
		s.SharedFloor = Best(s.SharedFloor, cs)
		line := fmt.Sprintf("%d namespaces, round %d: meshtrace %v, floor %v, floor through /proc %v", s.Namespaces, i, cl, cf, cs)
		if shell {
			cs, err := nd.Shell(o.ScriptDir)
			if err != nil {
				return s, err
			}
			s.Shell = Best(s.Shell, cs)
			line += fmt.Sprintf(", operator loop %v", cs)
		}
		o.Logf("%s", line)
	}
	if o.Profile != nil {
		err := o.Profile(fmt.Sprintf("inspect-%d", n), func() error {
			for range 5 {
				if _, _, err := nd.Live(inspect.FirewallAuto); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// Lines runs both nodes and returns the inspect-200 and inspect-2000
// lines.
func Lines(o Options) ([]report.Line, error) {
	o.defaults()
	small, err := Run(Small, true, o)
	if err != nil {
		return nil, fmt.Errorf("inspect-%d: %w", Small, err)
	}
	// The kernel frees namespaces asynchronously: let it, before the
	// next node is built and timed.
	time.Sleep(2 * time.Second)
	large, err := Run(Large, false, o)
	if err != nil {
		return []report.Line{Line200(small)}, fmt.Errorf("inspect-%d: %w", Large, err)
	}
	return []report.Line{Line200(small), Line2000(small, large)}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// Line200 is the inspect-200 line.
func Line200(s Sample) report.Line {
	l := report.Line{Name: fmt.Sprintf("inspect-%d", Small)}
	r, fr := ratio(s.Shell.Wall, s.Live.Wall), ratio(s.Live.Wall, s.Floor.Wall)
	l.Set("ratio", r)
	l.Set("floor_ratio", fr)
	l.Set("ms", ms(s.Live.Wall))
	l.Set("cpu_ms", ms(s.Live.CPU))
	l.Set("floor_ms", ms(s.Floor.Wall))
	l.Set("floor_cpu_ms", ms(s.Floor.CPU))
	l.Set("loop_ms", ms(s.Shell.Wall))
	l.Set("loop_cpu_ms", ms(s.Shell.CPU))
	l.Set("ratio_cpu", ratio(s.Shell.CPU, s.Live.CPU))
	l.Set("floor_ratio_cpu", ratio(s.Live.CPU, s.Floor.CPU))
	l.Set("namespaces", s.Namespaces)
	for i, name := range PhaseNames {
		l.Set("floor_"+name+"_us", s.phaseUS(i))
	}
	l.Set("floor_sharedproc_ms", ms(s.SharedFloor.Wall))
	l.Set("floor_sharedproc_cpu_ms", ms(s.SharedFloor.CPU))
	l.Set("floor_requests", int(s.Stats.Requests))
	l.Set("floor_reply_kb", int(s.Stats.Bytes>>10))
	l.Met(fmt.Sprintf("ratio>=%g,floor_ratio<=%g", TargetRatio, TargetFloorRatio), r >= TargetRatio && fr <= TargetFloorRatio)
	return l
}

// Line2000 is the inspect-2000 line: growth of the cost per namespace
// from the small node to the large one, of meshtrace and of the floor.
func Line2000(small, large Sample) report.Line {
	l := report.Line{Name: fmt.Sprintf("inspect-%d", Large)}
	g := ratio(large.PerNS(), small.PerNS())
	l.Set("per_netns_growth", g)
	l.Set("ms", ms(large.Live.Wall))
	l.Set("cpu_ms", ms(large.Live.CPU))
	l.Set("us_per_netns", float64(large.PerNS())/float64(time.Microsecond))
	l.Set("us_per_netns_at_200", float64(small.PerNS())/float64(time.Microsecond))
	l.Set("floor_ms", ms(large.Floor.Wall))
	l.Set("floor_ratio", ratio(large.Live.Wall, large.Floor.Wall))
	l.Set("floor_growth", ratio(large.FloorPerNS(), small.FloorPerNS()))
	l.Set("cpu_growth", ratio(large.Live.CPU/time.Duration(large.Namespaces), small.Live.CPU/time.Duration(small.Namespaces)))
	l.Set("floor_cpu_growth", ratio(large.Floor.CPU/time.Duration(large.Namespaces), small.Floor.CPU/time.Duration(small.Namespaces)))
	l.Set("floor_sharedproc_ms", ms(large.SharedFloor.Wall))
	l.Set("floor_sharedproc_growth", ratio(large.SharedFloor.Wall/time.Duration(large.Namespaces), small.SharedFloor.Wall/time.Duration(small.Namespaces)))
	l.Set("floor_sharedproc_cpu_growth", ratio(large.SharedFloor.CPU/time.Duration(large.Namespaces), small.SharedFloor.CPU/time.Duration(small.Namespaces)))
	for i, name := range PhaseNames {
		l.Set("floor_"+name+"_us", large.phaseUS(i))
		l.Set("floor_"+name+"_growth", large.phaseUS(i)/small.phaseUS(i))
	}
	l.Set("namespaces", large.Namespaces)
	l.Set("build_s", large.Build.Seconds())
	l.Met(fmt.Sprintf("per_netns_growth<=%g", TargetGrowth), g <= TargetGrowth)
	return l
}
