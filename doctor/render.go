package doctor

import (
	"fmt"
	"io"
	"strings"

	"github.com/meshtrace/meshtrace/internal/textsafe"
)

// WriteText writes the report the way a colleague would explain it: what
// is wrong, the evidence, how to see it by hand, what to do.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	counts := map[string]int{}
	for _, f := range r.Findings {
		counts[f.Severity]++
	}
	fmt.Fprintf(&b, "doctor: %s: %d error(s), %d warning(s), %d note(s)", esc(r.Source), counts[Error], counts[Warning], counts[Info])
	if len(r.Unknown) > 0 {
		fmt.Fprintf(&b, ", %d not checked", len(r.Unknown))
	}
	b.WriteString("\n")
	switch {
	case len(r.Findings) == 0 && len(r.Unknown) == 0 && len(r.Ports) == 0:
		b.WriteString("\nnothing wrong found; no port is published.\n")
	case len(r.Findings) == 0 && len(r.Unknown) == 0 && len(r.Coverage.Skipped) > 0:
		b.WriteString("\nnothing wrong found: every published port has a complete path; the checks the last line lists as not checked could not run (not collected).\n")
	case len(r.Findings) == 0 && len(r.Unknown) == 0:
		b.WriteString("\nnothing wrong found: every published port has a complete path.\n")
	case counts[Error]+counts[Warning] == 0 && len(r.Unknown) > 0:
		b.WriteString("\nno fault found in what could be checked; what could not be checked (not collected) is under NOT CHECKED.\n")
	}
	for _, f := range r.Findings {
		where := esc(f.Netns)
		if f.Port != "" {
			where += ", " + esc(f.Port)
		}
		fmt.Fprintf(&b, "\n%s [%s] in %s\n", esc(strings.ToUpper(f.Severity)), esc(f.Code), where)
		fmt.Fprintf(&b, "  %s\n", esc(f.Summary))
		fmt.Fprintf(&b, "  evidence: %s\n", esc(f.Evidence))
		if f.Confirm != "" {
			fmt.Fprintf(&b, "  confirm:  %s\n", esc(f.Confirm))
		}
		fmt.Fprintf(&b, "  fix:      %s\n", esc(f.Fix))
	}
	if len(r.Unknown) > 0 {
		b.WriteString("\nNOT CHECKED (not collected, so neither a fault nor healthy)\n")
		for _, u := range r.Unknown {
			fmt.Fprintf(&b, "  %s\n", esc(u.Reason))
		}
	}
	fmt.Fprintf(&b, "\n%s\n", esc(r.Coverage.Line()))
	_, err := io.WriteString(w, textsafe.Text(b.String()))
	return err
}

// esc escapes a string from the node or a bundle (names, evidence) for
// text output.
var esc = textsafe.String
