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
	fmt.Fprintf(&b, "doctor: %s: %d error(s), %d warning(s), %d note(s)\n", esc(r.Source), counts[Error], counts[Warning], counts[Info])
	if len(r.Findings) == 0 {
		b.WriteString("\nnothing wrong found: every published port has a complete path.\n")
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
	_, err := io.WriteString(w, textsafe.Text(b.String()))
	return err
}

// esc escapes a string from the node or a bundle (names, evidence) for
// text output.
var esc = textsafe.String
