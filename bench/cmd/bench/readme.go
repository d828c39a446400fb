package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/bench/report"
)

// readmeCmd writes bench/README.md (to stdout) from a run's output (a
// file, or - for stdin).
func readmeCmd(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: bench readme FILE|-  (writes the README to stdout)")
	}
	var r io.Reader = os.Stdin
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	lines, err := report.Parse(r)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s: no bench lines", args[0])
	}
	return report.Readme(os.Stdout, lines)
}

// runLine describes the run: when, where, how loaded, how long.
func runLine(start time.Time, load string) report.Line {
	l := report.Line{Name: "run"}
	l.Set("date", start.UTC().Format("2006-01-02T15:04Z"))
	l.Set("cores", runtime.NumCPU())
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		l.Set("kernel", "linux-"+unix.ByteSliceToString(u.Release[:]))
	}
	l.Set("go", runtime.Version())
	l.Set("load_start", load)
	l.Set("seconds", time.Since(start).Seconds())
	return l
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}
