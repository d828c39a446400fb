// Package parse reads the text output of the commands an operator runs on a
// Swarm node into meshtrace's model: `iptables-save [-c]`, one table's
// `iptables -S [-v]` or `iptables -L -n -v [-x] [--line-numbers]`,
// `ipvsadm-save -n`, `ipvsadm -Ln [--stats|--rate]`, `ipvsadm -L
// --timeout`, `ip [-d] addr`, `ip route`, `ip neigh`, `bridge fdb`,
// `sysctl`, `ss -tuln`, `conntrack -L`, `ip [-s] xfrm state|policy`,
// /proc/net/snmp and /proc/net/netstat, /proc/net/stat/nf_conntrack and
// `ip -s [-s] link`. Every reader takes its input as
// a stream of lines (at most MaxLine long), so memory grows with what the
// model keeps, not with the file; every rule is typed by Rule.Compile as
// it is read.
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
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"unsafe"

	"github.com/meshtrace/meshtrace/topology"
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

// ErrorList is the errors of one file, in line order: every rule whose
// arguments iptables would refuse (Rule.Compile), with the lines not
// understood beside them, so that one read names everything wrong with the
// file. errors.As finds the first *Error in it.
type ErrorList []*Error

// maxErrors bounds an ErrorList; one more entry says how many were left out.
const maxErrors = 50

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, for errors.As and errors.Is.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// badArgs collects the rules whose arguments do not compile, to be
// returned with the lines not understood once the file is read.
type badArgs struct {
	errs []*Error
	more int
}

func (b *badArgs) add(e *Error) {
	if len(b.errs) < maxErrors {
		b.errs = append(b.errs, e)
	} else {
		b.more++
	}
}

// err is nil when every rule compiled; else the bad rules and, beside them,
// the lines not understood (unparsed), in line order.
func (b *badArgs) err(file string, unparsed []topology.Unparsed) error {
	if len(b.errs) == 0 {
		return nil
	}
	l := ErrorList(b.errs)
	for _, u := range unparsed {
		if len(l) >= maxErrors {
			b.more++
			continue
		}
		l = append(l, errorf(u.File, u.Line, "not understood (%s): %q", u.Reason, clip(u.Text)))
	}
	sort.SliceStable(l, func(i, j int) bool { return l[i].Line < l[j].Line })
	if b.more > 0 {
		l = append(l, errorf(file, 0, "and %d more", b.more))
	}
	return l
}

func errorf(file string, line int, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// MaxLine is the longest line the parsers read; a longer one is an *Error
// naming the file and line. Real lines are far shorter: an iptables rule
// with the longest comment and a full BPF program is a few kilobytes.
const MaxLine = 1 << 20

// blockSize is how much lines reads at a time.
const blockSize = 64 << 10

// lines reads its input as a stream of lines, counting them from 1 and
// dropping the line terminator ("\n" or "\r\n"). It converts each block of
// complete lines it reads (about blockSize) to one string and hands out the
// lines as substrings of it: a line costs no allocation, and what the model
// keeps (rule texts, their tokens) holds on to the blocks it came from and
// nothing else. Memory grows with what the model keeps, not with the file.
// After next returns false, err says whether the input ended or failed.
type lines struct {
	file string
	r    io.Reader
	buf  []byte // read, not yet in a block: the start of a line
	data string // the current block
	pos  int
	n    int // number of the line last returned
	rerr error
	fail error // the *Error that ended the stream
	idle int   // reads in a row that returned nothing
}

func newLines(file string, r io.Reader) *lines {
	if w, ok := r.(*Whole); ok && w.Len() == len(w.s) {
		// Read whole already: its lines are substrings of it, one
		// block, neither copied nor converted again.
		w.Reset(nil)
		return &lines{file: file, r: w, data: w.s, rerr: io.EOF}
	}
	return &lines{file: file, r: r}
}

// Whole is an input read whole into memory (a small file of a bundle):
// the parsers take its lines from it in place, as one block, instead of
// copying it into blocks of their own. It reads as a bytes.Reader too.
type Whole struct {
	bytes.Reader
	s string // the same bytes
}

// NewWhole makes a Whole of b, which the caller gives up: b must not change
// afterwards (the lines the model keeps are b's bytes).
func NewWhole(b []byte) *Whole {
	w := &Whole{s: unsafe.String(unsafe.SliceData(b), len(b))}
	w.Reset(b)
	return w
}

// fastMAC reads the common form of a MAC, six pairs of hex digits joined
// by colons, as net.ParseMAC does but without its allocation; ok is false
// for any other form (which the caller hands to net.ParseMAC).
func fastMAC(s string) (topology.MAC, bool) {
	if len(s) != 17 {
		return topology.MAC{}, false
	}
	var b [6]byte
	for i := range b {
		if i < 5 && s[3*i+2] != ':' {
			return topology.MAC{}, false
		}
		if _, err := hex.Decode(b[i:i+1], []byte(s[3*i:3*i+2])); err != nil {
			return topology.MAC{}, false
		}
	}
	return topology.MACFrom(b[:]), true
}

// lineHint guesses how many lines of about perLine bytes r holds, when it
// says how long it is (a Whole, a bytes.Reader); 0 when it does not.
func lineHint(r io.Reader, perLine int) int {
	if lr, ok := r.(interface{ Len() int }); ok {
		return lr.Len()/perLine + 1
	}
	return 0
}

func (l *lines) next() (string, bool) {
	if l.pos >= len(l.data) && !l.fill() {
		return "", false
	}
	rest := l.data[l.pos:]
	line := rest
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		line = rest[:i]
		l.pos += i + 1
	} else {
		l.pos = len(l.data)
	}
	l.n++
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > MaxLine {
		l.tooLong()
		return "", false
	}
	return line, true
}

func (l *lines) tooLong() {
	l.data, l.pos = "", 0
	l.fail = errorf(l.file, l.n, "line longer than %d bytes (not a command's output?)", MaxLine)
}

// fill reads the next block of complete lines (or the last line, without
// a terminator) into data.
func (l *lines) fill() bool {
	for {
		if len(l.buf) >= blockSize || l.rerr != nil {
			if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
				l.data, l.pos = string(l.buf[:i+1]), 0
				l.buf = l.buf[:copy(l.buf, l.buf[i+1:])]
				return true
			}
		}
		if len(l.buf) > MaxLine+1 { // no line end in sight: a CR and LF may follow
			l.n++
			l.tooLong()
			return false
		}
		if l.rerr != nil {
			if l.rerr != io.EOF {
				l.fail = &Error{File: l.file, Line: l.n + 1, Msg: "read: " + l.rerr.Error(), Err: l.rerr}
				return false
			}
			if len(l.buf) == 0 {
				return false
			}
			l.data, l.pos = string(l.buf), 0
			l.buf = l.buf[:0]
			return true
		}
		if cap(l.buf)-len(l.buf) < blockSize/2 {
			// never more than a line's worth: an endless line is
			// found out after MaxLine, not after memory runs out
			size := min(max(2*cap(l.buf), 2*blockSize), MaxLine+blockSize)
			if lr, ok := l.r.(interface{ Len() int }); ok {
				// input in memory (a small bundle file read whole):
				// no more than what is left of it, and the read
				// that says EOF
				size = min(size, len(l.buf)+lr.Len()+1)
			}
			if size > cap(l.buf) {
				nb := make([]byte, len(l.buf), size)
				copy(nb, l.buf)
				l.buf = nb
			}
		}
		k, err := l.r.Read(l.buf[len(l.buf):cap(l.buf)])
		l.buf = l.buf[:len(l.buf)+k]
		switch {
		case err != nil:
			l.rerr = err
		case k > 0:
			l.idle = 0
		default:
			if l.idle++; l.idle >= 100 { // as bufio does
				l.rerr = io.ErrNoProgress
			}
		}
	}
}

// each calls fn with every line that is not blank, and its number, starting
// with first (the line next returned last, not yet handled) unless it is
// "", then returns err.
func (l *lines) each(first string, fn func(line string, n int) error) error {
	line, have := first, first != ""
	for {
		if !have {
			if line, have = l.next(); !have {
				break
			}
		}
		have = false
		if trimSpace(line) != "" {
			if err := fn(line, l.n); err != nil {
				return err
			}
		}
	}
	return l.err()
}

// err is the *Error that ended the stream early (a read error, a line
// longer than MaxLine), nil when the input simply ended.
func (l *lines) err() error {
	if l.fail == nil {
		return nil
	}
	return l.fail
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
