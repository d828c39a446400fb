package doctor

import (
	"fmt"
	"strings"
)

// Coverage says which checks ran and which were skipped, where, for lack of
// which data.
type Coverage struct {
	Checked []string `json:"checked"`
	Skipped []Skip   `json:"skipped,omitempty"`
}

// Skip is a check that could not run (everywhere or in some namespaces)
// because its data was not collected.
type Skip struct {
	Check string `json:"check"`
	// Missing is what was not collected ("sysctl", "ss", ...) and
	// In the namespaces it is missing from.
	Missing string   `json:"missing"`
	In      []string `json:"in"`
}

type coverage struct {
	checked []string
	skipped []*Skip
}

func newCoverage() *coverage { return &coverage{} }

func (c *coverage) ran(check string) {
	for _, x := range c.checked {
		if x == check {
			return
		}
	}
	c.checked = append(c.checked, check)
}

func (c *coverage) skip(check, missing, netns string) {
	for _, s := range c.skipped {
		if s.Check == check && s.Missing == missing {
			for _, n := range s.In {
				if n == netns {
					return
				}
			}
			s.In = append(s.In, netns)
			return
		}
	}
	c.skipped = append(c.skipped, &Skip{Check: check, Missing: missing, In: []string{netns}})
}

func (c *coverage) report() Coverage {
	r := Coverage{Checked: c.checked}
	if r.Checked == nil {
		r.Checked = []string{}
	}
	for _, s := range c.skipped {
		r.Skipped = append(r.Skipped, *s)
	}
	return r
}

// Line is the coverage as one line of text: "coverage: checked: …; not
// checked for lack of data: forwarding (sysctl not collected in host), …".
func (cv Coverage) Line() string {
	var b strings.Builder
	b.WriteString("coverage: checked: ")
	if len(cv.Checked) == 0 {
		b.WriteString("nothing")
	}
	b.WriteString(strings.Join(cv.Checked, ", "))
	if len(cv.Skipped) > 0 {
		var s []string
		for _, k := range cv.Skipped {
			s = append(s, fmt.Sprintf("%s (%s not collected in %s)", k.Check, k.Missing, strings.Join(k.In, ", ")))
		}
		b.WriteString("; not checked for lack of data: " + strings.Join(s, ", "))
	}
	return b.String()
}

// need records whether a check can run in ns: have tells whether its data
// was collected there.
func (c *checker) need(check, missing, netns string, have bool) bool {
	if have {
		c.cov.ran(check)
	} else {
		c.cov.skip(check, missing, netns)
	}
	return have
}
