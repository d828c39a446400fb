package main

import (
	"bufio"
	"bytes"
	"io"
	"os"

	"github.com/charmbracelet/x/term"
)

// stdout is the process's standard output behind one buffer, flushed when
// the command is done: a replay's millions of lines leave in a few large
// writes, not one write(2) each. To a terminal it is flushed at every
// newline, as C's stdio does, so progress shows as it is made.
type stdout struct {
	*bufio.Writer
	f    *os.File
	line bool
}

func newStdout(f *os.File) *stdout {
	return &stdout{Writer: bufio.NewWriterSize(f, 64<<10), f: f, line: term.IsTerminal(f.Fd())}
}

func (s *stdout) Write(p []byte) (int, error) {
	n, err := s.Writer.Write(p)
	if err == nil && s.line && bytes.IndexByte(p, '\n') >= 0 {
		err = s.Flush()
	}
	return n, err
}

// direct is w itself, or, for the process's buffered standard output, the
// file under it once what was buffered is written: for a child process
// that writes to it itself (mesh exec) and for output that must show as it
// comes (the demo's).
func direct(w io.Writer) io.Writer {
	if s, ok := w.(*stdout); ok {
		s.Flush()
		return s.f
	}
	return w
}
