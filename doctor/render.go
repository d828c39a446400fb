package doctor

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the report the way a colleague would explain it: what
// is wrong, the evidence, how to see it by hand, what to do.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	counts := map[string]int{}
	for _, f := range r.Findings {
		counts[f.Severity]++
	}
	fmt.Fprintf(&b, "doctor: %s: %d error(s), %d warning(s), %d note(s)", r.Source, counts[Error], counts[Warning], counts[Info])
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
		where := f.Netns
		if f.Port != "" {
			where += ", " + f.Port
		}
		fmt.Fprintf(&b, "\n%s [%s] in %s\n", strings.ToUpper(f.Severity), f.Code, where)
		fmt.Fprintf(&b, "  %s\n", f.Summary)
		fmt.Fprintf(&b, "  evidence: %s\n", f.Evidence)
		if f.Confirm != "" {
			fmt.Fprintf(&b, "  confirm:  %s\n", f.Confirm)
		}
		fmt.Fprintf(&b, "  fix:      %s\n", f.Fix)
	}
	if len(r.Unknown) > 0 {
		b.WriteString("\nNOT CHECKED (not collected, so neither a fault nor healthy)\n")
		for _, u := range r.Unknown {
			fmt.Fprintf(&b, "  %s\n", u.Reason)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", r.Coverage.Line())
	_, err := io.WriteString(w, b.String())
	return err
}
