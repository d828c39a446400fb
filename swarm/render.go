package swarm

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/meshtrace/meshtrace/internal/textsafe"
)

// cellText is how the text matrix prints a cell.
func cellText(s Status) string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotChecked:
		return "?"
	case StatusNA:
		return "-"
	}
	return strings.ToUpper(string(s))
}

// WriteText prints the report: a verdict line, the node × check matrix,
// each finding, and what could not be checked.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	verdict := "consistent"
	if !r.Consistent {
		named := map[string]bool{}
		for _, f := range r.Findings {
			named[f.Node] = true
		}
		verdict = fmt.Sprintf("NOT consistent: %d finding(s) on %d node(s)", len(r.Findings), len(named))
	}
	fmt.Fprintf(&b, "swarm check: %d node(s), %d service(s): %s\n\n", len(r.Nodes), len(r.Services), verdict)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "node\taddress")
	for _, ch := range Checks {
		fmt.Fprintf(tw, "\t%s", ch)
	}
	fmt.Fprintln(tw)
	for _, n := range r.Nodes {
		addr := "-"
		if n.Addr.IsValid() {
			addr = n.Addr.String()
		}
		fmt.Fprintf(tw, "%s\t%s", textsafe.String(n.Name), addr)
		for _, ch := range Checks {
			fmt.Fprintf(tw, "\t%s", cellText(n.Checks[ch]))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	b.WriteString("(ok: in step with the other nodes; ?: not checked, data missing; -: nothing to check)\n")
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n%s %s %s: %s\n", strings.ToUpper(string(f.Severity)), f.Code, textsafe.String(f.Node), textsafe.String(f.Summary))
		if f.Service != "" {
			fmt.Fprintf(&b, "  service: %s\n", textsafe.String(f.Service))
		}
		if f.Netns != "" {
			fmt.Fprintf(&b, "  netns: %s\n", textsafe.String(f.Netns))
		}
		fmt.Fprintf(&b, "  evidence: %s\n", textsafe.String(f.Evidence))
		if f.Confirm != "" {
			fmt.Fprintf(&b, "  confirm: %s\n", textsafe.String(f.Confirm))
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "  fix: %s\n", textsafe.String(f.Fix))
		}
	}
	if len(r.NotChecked) > 0 {
		b.WriteString("\nNOT CHECKED (not collected; never a divergence)\n")
		for _, nc := range r.NotChecked {
			fmt.Fprintf(&b, "  %s %s: %s\n", textsafe.String(nc.Node), nc.Check, textsafe.String(nc.Reason))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
