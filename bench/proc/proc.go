// Package proc runs the commands the benchmarks time (meshtrace,
// tshark, the shell baselines) and reports what the kernel accounted to
// each: wall time, CPU time and peak resident memory from wait4's rusage.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Usage is what one run of a command cost.
type Usage struct {
	Wall, CPU time.Duration
	// MaxRSS is the peak resident set of the process (ru_maxrss), in
	// bytes; it counts at least what this process held when it started
	// the command (kept small: resetPeak).
	MaxRSS int64
	// Out is the number of bytes it wrote to stdout (discarded unless the
	// command had its own Stdout).
	Out      int64
	ExitCode int
	Stderr   string
}

// RSSMB is MaxRSS in MiB.
func (u Usage) RSSMB() float64 { return float64(u.MaxRSS) / (1 << 20) }

// counter counts and discards.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// Run runs cmd to the end. A non-zero exit status is not an error (it is
// in Usage.ExitCode, and the caller decides); failing to start or being
// killed by a signal is, with the end of stderr.
func Run(cmd *exec.Cmd) (Usage, error) {
	var u Usage
	var out counter
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	var stderr bytes.Buffer
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	resetPeak()
	t0 := time.Now()
	err := cmd.Run()
	u.Wall = time.Since(t0)
	u.Out = out.n.Load()
	u.Stderr = tail(stderr.String(), 2000)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return u, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	st := cmd.ProcessState
	u.MaxRSS, u.CPU = usage(st)
	u.ExitCode = st.ExitCode()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return u, fmt.Errorf("%s killed by %v: %s", cmd.Path, ws.Signal(), u.Stderr)
	}
	return u, nil
}

// Check is Run, and an error naming the command when the exit status is
// not one of ok (default: 0).
func Check(cmd *exec.Cmd, ok ...int) (Usage, error) {
	u, err := Run(cmd)
	if err != nil {
		return u, err
	}
	if len(ok) == 0 {
		ok = []int{0}
	}
	for _, c := range ok {
		if u.ExitCode == c {
			return u, nil
		}
	}
	return u, fmt.Errorf("%s: exit status %d: %s", strings.Join(cmd.Args, " "), u.ExitCode, u.Stderr)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
