// Command bench runs meshtrace's benchmarks (scripts/bench builds and runs
// it as root from the repository's root) and prints one line per measure:
//
//	bench <name> key=value key=value ...
//
// ratio is baseline time / meshtrace time (higher is better), floor_ratio
// meshtrace time / floor time (lower is better); every baseline and floor
// is measured in the same run. Progress goes to stderr.
//
//	bench -bin MESHTRACE [-only inspect,replay,...] [-profile DIR]
//	bench readme FILE     # bench/README.md from FILE's bench lines
//	bench inproc ...      # a profiled in-process run (see inproc.go)
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/meshtrace/meshtrace/bench/report"
)

// measure is one group of lines.
type measure struct {
	name  string   // for -only
	lines []string // the names of the lines it prints
	run   func(e *env) ([]report.Line, error)
}

// env is what every measure gets.
type env struct {
	bin     string // meshtrace binary
	root    string // repository root
	tmp     string // scratch directory
	profile string // directory for profiles, "" = none
}

func (e *env) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// prof runs f under a CPU profile (name.cpu.pprof) and writes a heap
// profile after it (name.heap.pprof), in e.profile.
func (e *env) prof(name string, f func() error) error {
	cpu, err := os.Create(filepath.Join(e.profile, name+".cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	ferr := f()
	pprof.StopCPUProfile()
	heap, err := os.Create(filepath.Join(e.profile, name+".heap.pprof"))
	if err != nil {
		return errors.Join(ferr, err)
	}
	defer heap.Close()
	return errors.Join(ferr, pprof.Lookup("allocs").WriteTo(heap, 0))
}

// profiler is e.prof when profiles are asked for, else nil.
func (e *env) profiler() func(string, func() error) error {
	if e.profile == "" {
		return nil
	}
	return e.prof
}

func main() {
	if len(os.Args) > 1 {
		sub := map[string]func([]string) error{"readme": readmeCmd, "inproc": inprocCmd}[os.Args[1]]
		if sub != nil {
			if err := sub(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	var e env
	var only string
	flag.StringVar(&e.bin, "bin", "", "the meshtrace binary to measure (required)")
	flag.StringVar(&e.root, "root", ".", "the repository's root (scripts and baselines are read from there)")
	flag.StringVar(&e.tmp, "tmp", "", "scratch directory for captures and bundles (default: a new one in $TMPDIR)")
	flag.StringVar(&e.profile, "profile", "", "write CPU and heap profiles of meshtrace's code (in-process runs) to this directory")
	flag.StringVar(&only, "only", "", "comma-separated measures to run (default all): "+names())
	flag.Parse()
	if e.bin == "" {
		fmt.Fprintln(os.Stderr, "bench: -bin MESHTRACE is required")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: run as root (the measures build network namespaces)")
		os.Exit(2)
	}
	var err error
	if e.bin, err = filepath.Abs(e.bin); err != nil {
		fatal(err)
	}
	if e.tmp == "" {
		if e.tmp, err = os.MkdirTemp("", "meshtrace-bench-"); err != nil {
			fatal(err)
		}
		defer os.RemoveAll(e.tmp)
	}
	if e.profile != "" {
		if err := os.MkdirAll(e.profile, 0o755); err != nil {
			fatal(err)
		}
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	for n := range want {
		if find(n) == nil {
			fatal(fmt.Errorf("unknown measure %q: want %s", n, names()))
		}
	}
	failed := false
	start, load := time.Now(), loadAvg()
	for _, m := range measures {
		if len(want) > 0 && !want[m.name] {
			continue
		}
		t0 := time.Now()
		e.logf("%s: start", m.name)
		lines, err := m.run(&e)
		for _, l := range lines {
			fmt.Println(l)
		}
		if err != nil {
			failed = true
			e.logf("%s: %v", m.name, err)
			for _, n := range m.lines[len(lines):] {
				fmt.Println(report.Line{Name: n, Keys: []report.KV{{K: "status", V: "error"}, {K: "error", V: report.Format(firstLine(err.Error()))}}})
			}
		}
		e.logf("%s: done in %v", m.name, time.Since(t0).Round(time.Second))
	}
	fmt.Println(runLine(start, load))
	e.logf("all measures in %v", time.Since(start).Round(time.Second))
	if failed {
		os.Exit(1)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func find(name string) *measure {
	for i := range measures {
		if measures[i].name == name {
			return &measures[i]
		}
	}
	return nil
}

func names() string {
	var out []string
	for _, m := range measures {
		out = append(out, m.name)
	}
	return strings.Join(out, ",")
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
