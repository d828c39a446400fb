package trace

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/meshtrace/meshtrace/internal/textsafe"
	"github.com/meshtrace/meshtrace/topology"
)

// WriteJSON writes the result as indented JSON (topology.WriteJSON: a
// document of docs/json.md, with its schema_version).
func WriteJSON(w io.Writer, r *Result) error {
	return topology.WriteJSON(w, r)
}

// WriteText writes the result for people: per flow, the hop-by-hop table
// of the first request and the first reply, the rewrites with the rules
// that explain them, and where a flow stopped; then the summary. It is
// TextWriter over a whole result.
func WriteText(w io.Writer, r *Result) error {
	tw := NewTextWriter(w)
	for i := range r.Flows {
		tw.Flow(&r.Flows[i])
	}
	return tw.Summary(r, len(r.Flows))
}

// WriteTextStream writes a trace's events for people as they come: each
// flow when it ends, the summary last. It returns the stream's Done and
// whether a live capture said Ready; the summary is not written when the
// stream ended without one.
func WriteTextStream(w io.Writer, events iter.Seq[Event]) (done Done, ready bool, err error) {
	tw := NewTextWriter(w)
	for e := range events {
		switch e := e.(type) {
		case Ready:
			ready = true
		case FlowEnded:
			if err == nil {
				err = tw.Flow(&e.Flow)
			}
		case Done:
			done = e
		}
	}
	if done.Result == nil {
		return done, ready, errors.Join(err, errors.New("trace: the stream ended without its summary"))
	}
	if err == nil {
		err = tw.Summary(done.Result, done.Flows)
	}
	return done, ready, err
}

// TextWriter writes a trace for people as it goes: each flow when it
// ends, the summary last.
type TextWriter struct {
	ew  *errWriter
	buf []byte // one flow's text, written at once
}

// NewTextWriter writes to w.
func NewTextWriter(w io.Writer) *TextWriter { return &TextWriter{ew: &errWriter{w: w}} }

// Flow writes one flow and a blank line. Every string appendFlow takes
// from outside goes through esc, so the block skips errWriter's second
// look (the hostile-input tests check it).
func (t *TextWriter) Flow(f *Flow) error {
	if t.ew.err != nil {
		return t.ew.err
	}
	t.buf = appendFlow(t.buf[:0], f)
	t.buf = append(t.buf, '\n')
	if _, err := t.ew.w.Write(t.buf); err != nil {
		t.ew.err = err
	}
	return t.ew.err
}

// Summary writes what the trace saw (flows: how many were written), the
// probes, the points that failed or dropped, the notes and the error.
func (t *TextWriter) Summary(r *Result, flows int) error {
	ew := t.ew
	nPoints := 0
	for _, p := range r.Points {
		if p.Frames > 0 {
			nPoints++
		}
	}
	src := ""
	if r.Source != "" {
		src = ", source " + esc(r.Source)
	}
	ew.printf("%s/%d: %d flow(s), %d frames at %d point(s)%s\n", esc(r.Proto), r.Port, flows, r.Frames, nPoints, src)
	for _, p := range r.Probes {
		if p.Error != "" {
			ew.printf("probe %s -> %s: %s\n", esc(p.From), esc(p.To), esc(p.Error))
		} else {
			ew.printf("probe %s -> %s from %s: answered %q\n", esc(p.From), esc(p.To), esc(p.Local), p.Answer)
		}
	}
	for _, p := range r.Points {
		if p.Error != "" {
			ew.printf("point %s: %s\n", esc(p.Label("")), esc(p.Error))
		}
		if p.Drops > 0 {
			ew.printf("point %s: kernel dropped %d packets\n", esc(p.Label("")), p.Drops)
		}
	}
	for _, e := range r.ESP {
		ew.printf("esp spi %s %s -> %s: %d sighting(s), %d matched, %d ambiguous, %d unmatched", e.SPI, esc(e.Src), esc(e.Dst),
			e.Sightings, e.Matched, e.Ambiguous, e.Unmatched)
		if e.SA != "" {
			ew.printf(" (sa %s)", esc(e.SA))
		}
		if e.Note != "" {
			ew.printf(": %s", esc(e.Note))
		}
		ew.printf("\n")
	}
	for _, n := range r.Notes {
		ew.printf("note: %s\n", esc(n))
	}
	if r.Error != "" {
		ew.printf("error: %s\n", esc(r.Error))
	}
	return ew.err
}

// esc escapes a string from the system, a capture or a bundle (names,
// rules, errors) for text output.
var esc = textsafe.String

// appendFlow appends one flow's text: its line, the hop tables of the
// first request and reply, the rewrites, the packets, the conntrack and
// IPVS entries, where it stopped. Every string from outside is escaped.
func appendFlow(b []byte, f *Flow) []byte {
	be := "backend unknown"
	if f.Backend != nil {
		var at []string
		if f.Backend.Netns != nil {
			at = append(at, esc(*f.Backend.Netns))
		}
		for _, s := range []string{f.Backend.Node, f.Backend.Task} {
			if s != "" {
				at = append(at, esc(s))
			}
		}
		be = "backend " + esc(f.Backend.IP)
		if len(at) > 0 {
			be += " (" + strings.Join(at, ", ") + ")"
		}
	}
	b = append(b, "flow "...)
	b = strconv.AppendInt(b, int64(f.ID), 10)
	b = append(b, "  "...)
	b = append(b, esc(f.Proto)...)
	b = append(b, ' ')
	b = append(b, esc(f.Client)...)
	b = append(b, " -> "...)
	b = append(b, esc(f.Server)...)
	b = append(b, "  "...)
	b = append(b, be...)
	b = append(b, "  ["...)
	switch {
	case f.Complete:
		b = append(b, "complete"...)
	case f.Midstream:
		b = append(b, "began before the capture"...)
	default:
		b = append(b, "incomplete"...)
	}
	b = append(b, ", "...)
	b = append(b, pick(f.Answered, "answered", "NOT answered")...)
	b = append(b, "]\n"...)
	for _, p := range f.Packets {
		if p.Dir == "request" {
			b = append(append(append(b, "  request "...), esc(p.Flags)...), '\n')
			break
		}
	}
	b = appendHops(b, f.Hops)
	if len(f.ReplyHops) > 0 {
		for _, p := range f.Packets {
			if p.Dir == "reply" {
				b = append(append(append(b, "  reply "...), esc(p.Flags)...), '\n')
				break
			}
		}
		b = appendHops(b, f.ReplyHops)
	}
	if len(f.Rewrites) > 0 {
		b = append(b, "  rewrites\n"...)
		var t table
		for _, rw := range f.Rewrites {
			what := esc(rw.From) + " -> " + esc(rw.To)
			if rw.ToPort != 0 && rw.Kind == "redirect" {
				what += " (port " + strconv.Itoa(rw.ToPort) + ")"
			}
			extra := []string{}
			if rw.FWMark != 0 {
				extra = append(extra, "fwmark "+strconv.FormatUint(uint64(rw.FWMark), 10))
			}
			if rw.Impl != "" {
				extra = append(extra, "impl "+esc(rw.Impl))
			}
			extra = append(extra, "seen in "+esc(rw.Seen))
			if rw.Note != "" {
				extra = append(extra, esc(rw.Note))
			}
			t.row(esc(rw.Rule), "    "+nodeNetns(rw.Node, rw.Netns), esc(rw.Kind), what, strings.Join(extra, ", "))
		}
		b = t.append(b)
	}
	b = append(b, "  packets (dir flags(len)@hops):"...)
	for _, p := range f.Packets {
		b = append(b, ' ')
		switch p.Dir {
		case "request":
			b = append(b, '>')
		case "reply":
			b = append(b, '<')
		}
		b = append(b, ' ')
		b = append(b, esc(p.Flags)...)
		b = append(b, '(')
		b = strconv.AppendInt(b, int64(p.Len), 10)
		b = append(b, ")@"...)
		b = strconv.AppendInt(b, int64(p.Sightings), 10)
	}
	b = append(b, '\n')
	for _, c := range f.Conntrack {
		b = fmt.Appendf(b, "  conntrack %s: %s | reply %s %s\n", nodeNetns(c.Node, c.Netns), esc(c.Orig), esc(c.Reply), esc(c.State))
	}
	for _, v := range f.IPVS {
		b = fmt.Appendf(b, "  ipvs %s: %s %s -> %s -> %s %s\n", nodeNetns(v.Node, v.Netns), esc(v.Entry.Proto), v.Entry.Client, v.Entry.Virtual, v.Entry.Dest, esc(v.Entry.State))
	}
	if s := f.Stop; s != nil {
		b = fmt.Appendf(b, "  STOPPED (%s) at %s/%s %s: %s\n", esc(s.Packet), nodeNetns(s.Node, s.Netns), esc(s.Ifname), esc(s.Dir), esc(s.Reason))
		for _, e := range s.Expected {
			b = fmt.Appendf(b, "    model: %s\n", esc(e))
		}
	}
	if l := f.Loss; l != nil {
		b = fmt.Appendf(b, "  LOSS: %s\n", esc(l.Summary))
	}
	return b
}

func pick(c bool, yes, no string) string {
	if c {
		return yes
	}
	return no
}

// appendHops appends a hop table: number, where, direction, addresses,
// the delta from the previous hop, the VXLAN header. It is laid out as
// table does, without building the cells: hop tables are most of
// replay's output.
func appendHops(b []byte, hops []Hop) []byte {
	type row struct{ node, netns, ifname, dir, src, dst, encap string }
	var small [16]row // most tables: no allocation
	rows := small[:0]
	if len(hops) > len(small) {
		rows = make([]row, 0, len(hops))
	}
	rows = rows[:len(hops)]
	// the header's widths: "    #", "hop", "dir", "src", "dst", "+us"
	w := [6]int{5, 3, 3, 3, 3, 3}
	for i, h := range hops {
		r := row{esc(h.Node), esc(h.Netns), esc(h.Ifname), esc(h.Dir), esc(h.Src), esc(h.Dst), esc(h.Encap)}
		if r.netns == "" {
			r.netns = "?"
		}
		if h.Netns == "" && h.File != "" {
			r.node, r.netns = "", esc(h.File)
		}
		rows[i] = r
		at := runes(r.netns) + 1 + runes(r.ifname)
		if r.node != "" {
			at += runes(r.node) + 1
		}
		w[0] = max(w[0], 4+digits(int64(i+1)))
		w[1] = max(w[1], at)
		w[2] = max(w[2], runes(r.dir))
		w[3] = max(w[3], runes(r.src))
		w[4] = max(w[4], runes(r.dst))
		w[5] = max(w[5], digits(h.DeltaUS))
	}
	b = cell(b, "    #", w[0])
	b = cell(b, "hop", w[1])
	b = cell(b, "dir", w[2])
	b = cell(b, "src", w[3])
	b = cell(b, "dst", w[4])
	b = cell(b, "+us", w[5])
	b = append(b, '\n')
	for i, r := range rows {
		n := len(b)
		b = strconv.AppendInt(append(b, "    "...), int64(i+1), 10)
		b = spaces(b, w[0]+2-(len(b)-n))
		n = len(b)
		if r.node != "" {
			b = append(append(b, r.node...), ':')
		}
		b = append(append(append(b, r.netns...), '/'), r.ifname...)
		b = spaces(b, w[1]+2-utf8.RuneCount(b[n:]))
		b = cell(b, r.dir, w[2])
		b = cell(b, r.src, w[3])
		b = cell(b, r.dst, w[4])
		n = len(b)
		b = strconv.AppendInt(b, hops[i].DeltaUS, 10)
		b = spaces(b, w[5]+2-(len(b)-n))
		b = append(append(b, r.encap...), '\n')
	}
	return b
}

// cell appends s padded to a column of width w and the padding of 2.
func cell(b []byte, s string, w int) []byte {
	return spaces(append(b, s...), w+2-runes(s))
}

// blanks pads cells.
const blanks = "                                                                "

func spaces(b []byte, n int) []byte {
	for n > len(blanks) {
		b, n = append(b, blanks...), n-len(blanks)
	}
	if n > 0 {
		b = append(b, blanks[:n]...)
	}
	return b
}

func runes(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return utf8.RuneCountInString(s)
		}
	}
	return len(s)
}

func digits(n int64) int {
	d := 1
	if n < 0 {
		d, n = 2, -n
	}
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// table lays out rows of cells in columns as text/tabwriter does with
// padding 2 (every cell padded to its column's widest plus two spaces,
// widths counted in runes), each row ending with a last, unpadded text.
type table struct {
	rows  [][]string
	last  []string
	width []int
}

func (t *table) row(last string, cells ...string) {
	t.rows = append(t.rows, cells)
	t.last = append(t.last, last)
	for i, c := range cells {
		if i == len(t.width) {
			t.width = append(t.width, 0)
		}
		t.width[i] = max(t.width[i], utf8.RuneCountInString(c))
	}
}

func (t *table) append(b []byte) []byte {
	for r, cells := range t.rows {
		for i, c := range cells {
			b = cell(b, c, t.width[i])
		}
		b = append(b, t.last[r]...)
		b = append(b, '\n')
	}
	return b
}

// nodeNetns is "node:netns", escaped.
func nodeNetns(node, netns string) string {
	if netns == "" {
		netns = "?"
	}
	if node == "" {
		return esc(netns)
	}
	return esc(node) + ":" + esc(netns)
}

type errWriter struct {
	w   io.Writer
	err error
}

// Write writes p escaped as a whole (a string printed without esc still
// cannot reach the terminal raw). fmt and tabwriter write whole strings
// and cells, so no character is split between two writes.
func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if _, err := io.WriteString(e.w, textsafe.Text(string(p))); err != nil {
		e.err = err
		return 0, err
	}
	return len(p), nil
}

func (e *errWriter) printf(format string, a ...any) {
	fmt.Fprintf(e, format, a...)
}
