package parse

import (
	"io"
	"strconv"

	"github.com/meshtrace/meshtrace/topology"
)

// linewise drives the parsers of outputs made of independent lines (ip
// route, ip neigh, bridge fdb, sysctl, ss, conntrack): it calls fn with
// every non-blank line, its number and its fields (reused between calls).
// fn returns "" when it understood the line (or knows it as a line of that
// command that the model does not keep, e.g. a header), else why not; such
// a line is kept verbatim as an Unparsed with the file, line and reason.
// When no line at all is understood but some are not, the input is not the
// command's output: an *Error naming the first of them.
func linewise(file, what string, r io.Reader, fn func(n int, line string, f []string) (why string)) ([]topology.Unparsed, error) {
	var (
		bad  []topology.Unparsed
		good int
		f    []string
	)
	ls := newLines(file, r)
	for {
		line, ok := ls.next()
		if !ok {
			break
		}
		f = fields(f, line)
		if len(f) == 0 {
			continue
		}
		if why := fn(ls.n, line, f); why != "" {
			bad = append(bad, topology.Unparsed{File: file, Line: ls.n, Text: line, Reason: why})
			continue
		}
		good++
	}
	if err := ls.err(); err != nil {
		return nil, err
	}
	if good == 0 && len(bad) > 0 {
		return nil, errorf(file, bad[0].Line, "not %s output: %s: %q", what, bad[0].Reason, clip(bad[0].Text))
	}
	return bad, nil
}

// after returns the word after f[i] and whether there is one.
func after(f []string, i int) (string, bool) {
	if i+1 < len(f) {
		return f[i+1], true
	}
	return "", false
}

// quote is a clipped word for a reason.
func quote(s string) string { return strconv.Quote(clip(s)) }
