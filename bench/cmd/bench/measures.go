package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshtrace/meshtrace/bench/bundles"
	inspectbench "github.com/meshtrace/meshtrace/bench/inspect"
	meshbench "github.com/meshtrace/meshtrace/bench/mesh"
	"github.com/meshtrace/meshtrace/bench/report"
	benchtrace "github.com/meshtrace/meshtrace/bench/trace"
)

// measures, in the order they run.
var measures = []measure{
	{"inspect", []string{"inspect-200", "inspect-2000"}, func(e *env) ([]report.Line, error) {
		return inspectbench.Lines(inspectbench.Options{ScriptDir: filepath.Join(e.root, "bench/inspect"), Logf: e.logf, Profile: e.profiler()})
	}},
	{"replay", []string{"replay-1M", "replay-1M-500k-flows"}, func(e *env) ([]report.Line, error) {
		o := benchtrace.ReplayOptions{Bin: e.bin, Dir: e.tmp, Logf: e.logf}
		if e.profile != "" {
			o.Profile = func(name, file string) error { return e.profileChild(name, "replay", file) }
		}
		return benchtrace.ReplayLines(o)
	}},
	{"bundle", []string{"bundle-200MB"}, func(e *env) ([]report.Line, error) {
		l, err := bundles.BigLine(e.bundleOptions())
		return one(l, err)
	}},
	{"mesh", []string{"mesh-updown"}, func(e *env) ([]report.Line, error) {
		l, err := meshbench.Line(e.bin, filepath.Join(e.root, "bench/mesh"), fmt.Sprintf("mb%d", os.Getpid()%100000), e.logf)
		return one(l, err)
	}},
	{"trace", []string{"trace-load"}, func(e *env) ([]report.Line, error) {
		l, _, err := benchtrace.LoadLine(benchtrace.LoadOptions{Bin: e.bin, Name: fmt.Sprintf("mbl%d", os.Getpid()%100000), Logf: e.logf})
		return one(l, err)
	}},
	{"swarm", []string{"swarm-check-50"}, func(e *env) ([]report.Line, error) {
		l, err := bundles.SwarmLine(e.bundleOptions())
		return one(l, err)
	}},
}

// one is a measure's single line, none when it failed.
func one(l report.Line, err error) ([]report.Line, error) {
	if err != nil {
		return nil, err
	}
	return []report.Line{l}, nil
}

func (e *env) bundleOptions() bundles.Options {
	o := bundles.Options{Bin: e.bin, Root: e.root, Dir: e.tmp, Logf: e.logf}
	if e.profile != "" {
		o.Profile = func(name, dir string) error { return e.profileChild(name, "bundle", dir) }
		o.ProfileSwarm = func(name, dir string) error { return e.profileChild(name, "swarm", dir) }
	}
	return o
}
