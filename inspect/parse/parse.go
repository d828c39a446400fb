// Package parse reads the text output of the commands an operator runs on a
// Swarm node into meshtrace's model: `iptables-save [-c]`, `ipvsadm-save -n`,
// `ipvsadm -Ln [--stats]`, `ipvsadm -L --timeout`, `ip [-d] addr`, `ip
// route`, `ip neigh`, `bridge fdb`, `sysctl`, `ss -tuln` and `conntrack -L`.
// The bundle reader feeds it the files of a bundle directory and the live
// reader the output of commands it ran inside a namespace.
//
// The parsers are pure (no kernel, no root) and never panic on bad input.
// Damage that leaves the file's structure unknowable (a truncated
// iptables-save, a rule for an undeclared chain, something that is not the
// expected command's output at all) is an *Error naming the file and line.
// An iptables rule line that is structurally in place but not understood is
// kept verbatim in topology.Firewall.Unparsed with its reason, never dropped;
// so is a line of the line-by-line outputs (routes, neighbours, FDB,
// sysctls, sockets, conntrack) that is not understood, returned beside the
// result (the bundle reader reports them as the namespace's errors).
package parse

import (
	"fmt"
	"io"
	"strings"
)

// Error is a parse error naming the file and line.
type Error struct {
	File string
	Line int // 1-based; 0 when the error is not about one line (a read error)
	Msg  string
	// Err is the underlying cause, when there is one (a read error).
	Err error
}

func (e *Error) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

func errorf(file string, line int, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// readAll reads the whole input as one string; every line, token and rule
// text the parsers keep is a substring of it, so a parse costs one copy of
// the input plus the model.
func readAll(file string, r io.Reader) (string, error) {
	var b strings.Builder
	if _, err := io.Copy(&b, r); err != nil {
		return "", &Error{File: file, Msg: "read: " + err.Error(), Err: err}
	}
	return b.String(), nil
}

// lines iterates over the lines of a string, counting them from 1 and
// dropping the line terminator ("\n" or "\r\n").
type lines struct {
	data string
	pos  int
	n    int // number of the line last returned
}

func (l *lines) next() (string, bool) {
	if l.pos >= len(l.data) {
		return "", false
	}
	rest := l.data[l.pos:]
	var line string
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		line = rest[:i]
		l.pos += i + 1
	} else {
		line = rest
		l.pos = len(l.data)
	}
	l.n++
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, true
}

// fields splits s at runs of spaces and tabs into dst (reused) and returns it.
func fields(dst []string, s string) []string {
	dst = dst[:0]
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}

// trimSpace trims spaces and tabs (only) from both ends.
func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

// atoi parses a non-negative decimal int without allocating; ok is false on
// anything else (sign, empty, overflow past 1<<62).
func atoi(s string) (int, bool) {
	u, ok := atou(s)
	if !ok || u > 1<<62 {
		return 0, false
	}
	return int(u), true
}

// atou parses a non-negative decimal uint64.
func atou(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
