package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/swarm/load"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/pcapio"
)

// The in-process runs profiled for the report: what `meshtrace replay
// FILE` and `meshtrace inspect --from DIR` do (cmd/meshtrace), with the
// text written to a buffered io.Discard. Each runs in a child process
// (`bench inproc`), so its heap profile and peak RSS are its own.
var jobs = map[string]func(arg string) (keep any, err error){
	"replay": func(file string) (any, error) {
		// as `meshtrace replay FILE` does: each flow written as it ends
		w := bufio.NewWriter(io.Discard)
		fs := &pcapio.Files{Paths: []string{file}}
		done, _, err := trace.WriteTextStream(w, fs.Stream(context.Background(), nil, trace.ReplayOptions{}))
		return done.Result, errors.Join(done.Err, err, w.Flush())
	},
	"swarm": func(dir string) (any, error) {
		// as `meshtrace swarm check --from DIR -o json` does
		var k swarm.Checker
		if err := load.CheckDir(context.Background(), dir, k.Add); err != nil {
			return nil, err
		}
		r := k.Report()
		w := bufio.NewWriter(io.Discard)
		return r, errors.Join(topology.WriteJSON(w, r), w.Flush())
	},
	"bundle": func(dir string) (any, error) {
		m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
		if err != nil {
			return nil, err
		}
		w := bufio.NewWriter(io.Discard)
		return m, errors.Join(topology.WriteInspectText(w, topology.NewReport(m)), w.Flush())
	},
}

// profileChild runs job on arg in a child `bench inproc`, which writes
// DIR/name.cpu.pprof and DIR/name.heap.pprof.
func (e *env) profileChild(name, job, arg string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "inproc", "-profile", e.profile, "-name", name, job, arg)
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

func inprocCmd(args []string) error {
	fs := flag.NewFlagSet("inproc", flag.ContinueOnError)
	dir := fs.String("profile", ".", "directory for the profiles")
	name := fs.String("name", "", "profile name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 || jobs[fs.Arg(0)] == nil || *name == "" {
		return fmt.Errorf("usage: bench inproc -profile DIR -name NAME replay FILE | bundle DIR | swarm DIR")
	}
	cpu, err := os.Create(filepath.Join(*dir, *name+".cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	t0 := time.Now()
	keep, err := jobs[fs.Arg(0)](fs.Arg(1))
	d := time.Since(t0)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	runtime.GC()
	heap, err := os.Create(filepath.Join(*dir, *name+".heap.pprof"))
	if err != nil {
		return err
	}
	defer heap.Close()
	if err := pprof.WriteHeapProfile(heap); err != nil {
		return err
	}
	runtime.KeepAlive(keep)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Fprintf(os.Stderr, "inproc %s: %v, peak rss %d MB (profiles in %s)\n", *name, d.Round(time.Millisecond), ru.Maxrss>>10, *dir)
	return nil
}
