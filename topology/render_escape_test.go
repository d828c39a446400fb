package topology_test

import (
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/topology"
)

// TestTextEscapesControlCharacters: every string of the model (names,
// notes, unparsed lines, link names, Docker metadata, rules) carries a
// terminal escape and a newline; the text renderers print none raw.
func TestTextEscapesControlCharacters(t *testing.T) {
	for _, b := range []string{"modern", "eastwest"} {
		m, err := inspect.Bundle("../fixtures/bundles/" + b)
		if err != nil {
			t.Fatal(err)
		}
		topology.Classify(m)
		var p *topology.Path
		if pub := topology.PublishedPorts(m); len(pub) > 0 {
			if p, err = topology.FindPath(m, topology.Query{Proto: pub[0].Proto, Port: pub[0].Port}); err != nil {
				t.Fatal(err)
			}
		}
		r := topology.NewReport(m)
		m.Notes = append(m.Notes, "a note")
		for _, ns := range m.Namespaces {
			ns.Errors = append(ns.Errors, "an error")
			if ns.Firewall != nil {
				ns.Firewall.Unparsed = append(ns.Firewall.Unparsed, topology.Unparsed{File: "f", Line: 3, Text: "-A X -m what", Reason: "unknown match"})
			}
		}
		testutil.Poison(r)
		var out strings.Builder
		if err := topology.WriteInspectText(&out, r); err != nil {
			t.Fatal(err)
		}
		testutil.NoRawControl(t, b+": inspect", out.String())
		if p == nil {
			continue
		}
		p.Notes = append(p.Notes, "a note")
		testutil.Poison(p)
		out.Reset()
		if err := topology.WritePathText(&out, p); err != nil {
			t.Fatal(err)
		}
		testutil.NoRawControl(t, b+": path", out.String())
	}
}
