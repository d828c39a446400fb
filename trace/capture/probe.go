package capture

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/trace"
)

// Probe makes traffic to a published port from a client namespace with
// the probe client (internal/probe): TCP, one connection with an HTTP GET
// each; UDP, one datagram each, each from a port of its own.
type Probe struct {
	// Netns is the namespace file to open the sockets in ("" = this
	// process's); From names it in the output (client, host).
	Netns string
	From  string
	To    netip.AddrPort
	Proto string
	// Path is each GET's path and query (tcp; "" = "/"): a large
	// answer (the mesh's tasks: /?size=N) shows an MTU problem.
	Path  string
	Count int
	// Timeout bounds each probe (default 3 s).
	Timeout time.Duration
}

// Run makes Count probes one after another and reports each: the first
// line of each answer's body (the mesh's tasks answer with their name).
func (p Probe) Run(ctx context.Context) []trace.ProbeResult {
	if p.Timeout <= 0 {
		p.Timeout = probe.DefaultTimeout
	}
	var out []trace.ProbeResult
	for i := 0; i < max(p.Count, 1); i++ {
		if ctx.Err() != nil {
			break
		}
		r := trace.ProbeResult{From: p.From, To: p.To.String()}
		pctx, cancel := context.WithTimeout(ctx, p.Timeout)
		a, err := probe.Do(pctx, probe.Request{Netns: p.Netns, Name: p.From, Proto: p.Proto, To: p.To, Path: p.Path,
			Payload: fmt.Sprintf("meshtrace probe %d\n", i+1)})
		cancel()
		if a.Local.IsValid() {
			r.Local = a.Local.String()
		}
		r.Answer = a.First()
		if err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
		if i+1 < p.Count {
			time.Sleep(20 * time.Millisecond) // keep the flows apart in time
		}
	}
	return out
}
