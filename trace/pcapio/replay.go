package pcapio

import (
	"context"
	"iter"

	"github.com/meshtrace/meshtrace/trace"
)

// Files are capture files to replay: ours (pcapng, one interface per
// point), tcpdump's (pcap/pcapng, one interface or -i any), several at
// once (one per hop). This is replay's one setup, for the command and
// the TUI: Survey (once, when a source is to be loaded: its port), then
// Stream against the source's Env.
type Files struct {
	Paths  []string
	survey *trace.Survey
}

// Survey reads the files once through (cached): their points, the
// addresses and MACs their frames carry, the traffic's port
// (GuessPort).
func (fs *Files) Survey() *trace.Survey {
	if fs.survey == nil {
		fs.survey = Survey(fs.Paths)
	}
	return fs.survey
}

// Stream replays the files (trace.Replay). With env, the files are read
// twice: once to attribute foreign captures to env's namespaces and name
// their interfaces (trace.Survey), then streamed.
func (fs *Files) Stream(ctx context.Context, env *trace.Env, o trace.ReplayOptions) iter.Seq[trace.Event] {
	rd := Open(fs.Paths)
	if env != nil {
		s := fs.Survey()
		s.Attribute(env)
		rd.Preset, rd.Dirs = s.Points, trace.NewDirections(s.Points, env)
		for _, c := range s.ClockShifts() {
			if rd.Shift == nil {
				rd.Shift = map[string]int64{}
			}
			rd.Shift[c.Node] = int64(c.Ahead)
			o.Notes = append(o.Notes, c.String())
		}
	}
	return func(yield func(trace.Event) bool) {
		src := Prefetch(rd).(*prefetch)
		defer src.Close()
		for e := range trace.Replay(ctx, src, env, o) {
			if !yield(e) {
				return
			}
		}
	}
}

// Replay replays files and returns the batch result (trace.Collect):
// flows in the order first seen, numbered from 1. A bad file gives its
// error in Result.Error (and the returned error) with the flows read
// before it; files without one frame to analyse are an error too.
func Replay(paths []string, env *trace.Env, o trace.ReplayOptions) (*trace.Result, error) {
	fs := &Files{Paths: paths}
	return trace.Collect(fs.Stream(context.Background(), env, o))
}
