// Package report is the output contract of scripts/bench: one line
// per measure,
//
//	bench <name> key=value key=value ...
//
// where ratio is baseline time / meshtrace time (higher is better) and
// floor_ratio is meshtrace time / floor time (lower is better). Values
// never contain spaces. bench/README.md is generated from these lines
// (Readme).
package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Line is one measure.
type Line struct {
	Name string
	Keys []KV
}

// KV is one key=value of a line.
type KV struct{ K, V string }

// Set adds or replaces key k; v is formatted by Format.
func (l *Line) Set(k string, v any) {
	s := Format(v)
	for i := range l.Keys {
		if l.Keys[i].K == k {
			l.Keys[i].V = s
			return
		}
	}
	l.Keys = append(l.Keys, KV{k, s})
}

// Get returns the value of key k, or "".
func (l Line) Get(k string) string {
	for _, kv := range l.Keys {
		if kv.K == k {
			return kv.V
		}
	}
	return ""
}

// Met sets met=yes or met=no and the target key.
func (l *Line) Met(target string, ok bool) {
	l.Set("target", target)
	l.Set("met", map[bool]string{true: "yes", false: "no"}[ok])
}

// Format renders a value the way every line does: durations in
// milliseconds are the caller's business (keys say their unit), floats
// with 3 significant decimals at most, strings with spaces replaced.
func Format(v any) string {
	switch x := v.(type) {
	case string:
		return strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\n' {
				return '_'
			}
			return r
		}, x)
	case float64:
		return formatFloat(x)
	case float32:
		return formatFloat(float64(x))
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case time.Duration:
		return formatFloat(float64(x) / float64(time.Millisecond))
	}
	return Format(fmt.Sprint(v))
}

func formatFloat(x float64) string {
	switch a := abs(x); {
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// String is the line as scripts/bench prints it.
func (l Line) String() string {
	var b strings.Builder
	b.WriteString("bench ")
	b.WriteString(l.Name)
	for _, kv := range l.Keys {
		b.WriteString(" ")
		b.WriteString(kv.K)
		b.WriteString("=")
		b.WriteString(kv.V)
	}
	return b.String()
}

// Parse reads every `bench ...` line of r; other lines are skipped. A
// bench line whose fields are not key=value is an error naming the line.
func Parse(r io.Reader) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "bench" {
			continue
		}
		l := Line{Name: f[1]}
		for _, kv := range f[2:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("line %d: %q is not key=value", n, kv)
			}
			l.Keys = append(l.Keys, KV{k, v})
		}
		out = append(out, l)
	}
	return out, sc.Err()
}
