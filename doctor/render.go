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
	fmt.Fprintf(&b, "doctor: %s: %d error(s), %d warning(s), %d note(s)\n", r.Source, counts[Error], counts[Warning], counts[Info])
	if len(r.Findings) == 0 {
		b.WriteString("\nnothing wrong found: every published port has a complete path.\n")
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
	_, err := io.WriteString(w, b.String())
	return err
}
