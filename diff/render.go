package diff

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/internal/textsafe"
	"github.com/meshtrace/meshtrace/topology"
)

func utoa(v uint64) string { return strconv.FormatUint(v, 10) }

func signed(v int64) string {
	if v >= 0 {
		return "+" + strconv.FormatInt(v, 10)
	}
	return strconv.FormatInt(v, 10)
}

// counterSummary says what a counter did: "filter INPUT #1 packets +4
// (+336 bytes): -A INPUT …", "UdpNoPorts +3", "eth0 rx_dropped +2".
func counterSummary(c topology.CounterDelta) string {
	var b strings.Builder
	b.WriteString(string(c.Kind))
	if c.Object != "" {
		b.WriteString(" " + c.Object)
	}
	b.WriteString(" " + c.Counter + " ")
	if c.Reset {
		fmt.Fprintf(&b, "went back from %d to %d (made anew or reset)", c.Before, c.After)
	} else {
		b.WriteString(signed(c.Delta))
	}
	if c.Bytes != 0 && !c.Reset {
		fmt.Fprintf(&b, " (%s bytes)", signed(c.Bytes))
	}
	if c.Text != "" {
		b.WriteString(": " + c.Text)
	}
	return b.String()
}

// WriteOptions shape the output.
type WriteOptions struct {
	// JSON: Write writes JSON (WriteJSON), else text (WriteText).
	JSON bool
	// NoCounters leaves the counters that moved out (the text counts them).
	NoCounters bool
}

// Write writes r as o says.
func Write(w io.Writer, r *Result, o WriteOptions) error {
	if o.JSON {
		return WriteJSON(w, r, o)
	}
	return WriteText(w, r, o)
}

// WriteText writes r for people: a header, then namespace by namespace
// its changes (those the kernel makes on its own marked so, counters
// last) and
// what was not compared.
func WriteText(w io.Writer, r *Result, o WriteOptions) error {
	var b strings.Builder
	esc := textsafe.String
	counters := len(r.Changes) - r.Configuration()
	fmt.Fprintf(&b, "A: %s\nB: %s\n", esc(r.A), esc(r.B))
	fmt.Fprintf(&b, "%d changes, %d the kernel made on its own (counters, learned entries)", r.Configuration(), counters)
	if len(r.NotCompared) > 0 {
		fmt.Fprintf(&b, "; %d areas not compared (not collected on one side)", len(r.NotCompared))
	}
	b.WriteString("\n")
	// An area not compared in every namespace for one reason is said once.
	everywhere := map[NotCompared]bool{}
	if len(r.order) > 1 {
		count := map[NotCompared]int{}
		for _, n := range r.NotCompared {
			if n.Netns != "" {
				count[NotCompared{Area: n.Area, Reason: n.Reason}]++
			}
		}
		for _, n := range r.NotCompared {
			k := NotCompared{Area: n.Area, Reason: n.Reason}
			if n.Netns != "" && count[k] == len(r.order) && !everywhere[k] {
				everywhere[k] = true
				fmt.Fprintf(&b, "not compared in any namespace: %s: %s\n", esc(n.Area), esc(n.Reason))
			}
		}
	}
	type group struct {
		changes []Change
		skipped []NotCompared
	}
	var groups ordered[group]
	at := groups.at
	for _, netns := range r.order {
		at(netns)
	}
	for _, c := range r.Changes {
		if o.NoCounters && c.Kind == CounterMoved {
			at(c.Netns)
			continue
		}
		at(c.Netns).changes = append(at(c.Netns).changes, c)
	}
	for _, n := range r.NotCompared {
		if !everywhere[NotCompared{Area: n.Area, Reason: n.Reason}] || n.Netns == "" {
			at(n.Netns).skipped = append(at(n.Netns).skipped, n)
		}
	}
	for _, netns := range groups.keys {
		g := groups.m[netns]
		if len(g.changes) == 0 && len(g.skipped) == 0 {
			continue
		}
		if netns == "" {
			b.WriteString("\nnode (Docker)\n")
		} else {
			fmt.Fprintf(&b, "\nnetns %s\n", esc(netns))
		}
		for _, c := range g.changes {
			tag := ""
			if c.Auto && c.Kind != CounterMoved {
				tag = "  [auto]"
			}
			fmt.Fprintf(&b, "  %-15s %s%s\n", c.Kind, esc(c.Summary), tag)
		}
		for _, n := range g.skipped {
			fmt.Fprintf(&b, "  %-15s %s: %s\n", "not compared", esc(n.Area), esc(n.Reason))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes r as JSON (see SchemaVersion); NoCounters leaves the
// counters out.
func WriteJSON(w io.Writer, r *Result, o WriteOptions) error {
	if o.NoCounters {
		cp := *r
		cp.Changes = nil
		for _, c := range r.Changes {
			if c.Kind != CounterMoved {
				cp.Changes = append(cp.Changes, c)
			}
		}
		if cp.Changes == nil {
			cp.Changes = []Change{}
		}
		r = &cp
	}
	return topology.WriteJSON(w, r)
}
