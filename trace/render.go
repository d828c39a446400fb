package trace

import (
	"encoding/json"
	"errors"
	"iter"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/meshtrace/meshtrace/internal/textsafe"
)

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, r *Result) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
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
type TextWriter struct{ ew *errWriter }

// NewTextWriter writes to w.
func NewTextWriter(w io.Writer) *TextWriter { return &TextWriter{ew: &errWriter{w: w}} }

// Flow writes one flow and a blank line.
func (t *TextWriter) Flow(f *Flow) error {
	writeFlow(t.ew, f)
	t.ew.printf("\n")
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

func writeFlow(ew *errWriter, f *Flow) {
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
	state := []string{}
	state = append(state, map[bool]string{true: "complete", false: "incomplete"}[f.Complete])
	state = append(state, map[bool]string{true: "answered", false: "NOT answered"}[f.Answered])
	ew.printf("flow %d  %s %s -> %s  %s  [%s]\n", f.ID, esc(f.Proto), esc(f.Client), esc(f.Server), be, strings.Join(state, ", "))
	if len(f.Packets) > 0 {
		for _, p := range f.Packets {
			if p.Dir == "request" {
				ew.printf("  request %s\n", esc(p.Flags))
				break
			}
		}
	}
	hopTable(ew, f.Hops)
	if len(f.ReplyHops) > 0 {
		for _, p := range f.Packets {
			if p.Dir == "reply" {
				ew.printf("  reply %s\n", esc(p.Flags))
				break
			}
		}
		hopTable(ew, f.ReplyHops)
	}
	if len(f.Rewrites) > 0 {
		ew.printf("  rewrites\n")
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		for _, rw := range f.Rewrites {
			what := esc(rw.From) + " -> " + esc(rw.To)
			if rw.ToPort != 0 && rw.Kind == "redirect" {
				what += fmt.Sprintf(" (port %d)", rw.ToPort)
			}
			extra := []string{}
			if rw.FWMark != 0 {
				extra = append(extra, fmt.Sprintf("fwmark %d", rw.FWMark))
			}
			if rw.Impl != "" {
				extra = append(extra, "impl "+esc(rw.Impl))
			}
			extra = append(extra, "seen in "+esc(rw.Seen))
			if rw.Note != "" {
				extra = append(extra, esc(rw.Note))
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", nodeNetns(rw.Node, rw.Netns), esc(rw.Kind), what, strings.Join(extra, ", "), esc(rw.Rule))
		}
		tw.Flush()
	}
	var sum []string
	for _, p := range f.Packets {
		sum = append(sum, fmt.Sprintf("%s %s(%d)@%d", map[string]string{"request": ">", "reply": "<"}[p.Dir], esc(p.Flags), p.Len, p.Sightings))
	}
	ew.printf("  packets (dir flags(len)@hops): %s\n", strings.Join(sum, " "))
	for _, c := range f.Conntrack {
		ew.printf("  conntrack %s: %s | reply %s %s\n", nodeNetns(c.Node, c.Netns), esc(c.Orig), esc(c.Reply), esc(c.State))
	}
	for _, v := range f.IPVS {
		ew.printf("  ipvs %s: %s %s -> %s -> %s %s\n", nodeNetns(v.Node, v.Netns), esc(v.Entry.Proto), v.Entry.Client, v.Entry.Virtual, v.Entry.Dest, esc(v.Entry.State))
	}
	if s := f.Stop; s != nil {
		ew.printf("  STOPPED (%s) at %s/%s %s: %s\n", esc(s.Packet), nodeNetns(s.Node, s.Netns), esc(s.Ifname), esc(s.Dir), esc(s.Reason))
		for _, e := range s.Expected {
			ew.printf("    model: %s\n", esc(e))
		}
	}
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

func hopTable(ew *errWriter, hops []Hop) {
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "    #\thop\tdir\tsrc\tdst\t+us\t\n")
	for i, h := range hops {
		at := nodeNetns(h.Node, h.Netns) + "/" + esc(h.Ifname)
		if h.Netns == "" && h.File != "" {
			at = esc(h.File) + "/" + esc(h.Ifname)
		}
		fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\t%s\t%d\t%s\n", i+1, at, esc(h.Dir), esc(h.Src), esc(h.Dst), h.DeltaUS, esc(h.Encap))
	}
	tw.Flush()
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
