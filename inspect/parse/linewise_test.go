package parse

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/topology"
)

// lineParser is the signature of the line-by-line parsers.
type lineParser[T any] func(file string, r io.Reader) (T, []topology.Unparsed, error)

// parseClean parses a recorded file and fails on an error or on any line
// not understood: recorded output must be understood whole.
func parseClean[T any](t *testing.T, path string, p lineParser[T]) T {
	t.Helper()
	v, bad, err := p(path, strings.NewReader(readFixture(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range bad {
		t.Errorf("%s:%d: not understood (%s): %q", u.File, u.Line, u.Reason, u.Text)
	}
	return v
}

// stateParsers are the line-by-line parsers by fixture kind, each with the
// number of entries a plain reading of a file expects.
var stateParsers = map[string]struct {
	parse func(string, io.Reader) (int, []topology.Unparsed, error)
	count func(data string) int
}{
	"iproute": {counted(IPRoute), routeLines},
	"ipneigh": {counted(IPNeigh), nonBlank},
	"fdb":     {counted(BridgeFDB), nonBlank},
	"sysctl":  {counted(Sysctl), distinctKeys},
	"ss":      {counted(SS), listeningLines},
	"conntrack": {counted(Conntrack), func(data string) int {
		return nonBlank(data) - strings.Count(data, "flow entries have been shown")
	}},
}

// counted turns a parser into one returning how many entries it read.
func counted[S any](p lineParser[S]) func(string, io.Reader) (int, []topology.Unparsed, error) {
	return func(file string, r io.Reader) (int, []topology.Unparsed, error) {
		v, bad, err := p(file, r)
		if err != nil {
			return 0, bad, err
		}
		return reflect.ValueOf(v).Len(), bad, err
	}
}

func nonBlank(data string) int {
	n := 0
	for _, l := range strings.Split(data, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// routeLines: one route per line, a multipath head counting as its
// nexthop lines.
func routeLines(data string) int {
	n := 0
	ls := strings.Split(data, "\n")
	for i, l := range ls {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case f[0] == "nexthop":
			n++
		case i+1 < len(ls) && strings.HasPrefix(strings.TrimSpace(ls[i+1]), "nexthop"):
		default:
			n++
		}
	}
	return n
}

func distinctKeys(data string) int {
	keys := map[string]bool{}
	for _, l := range strings.Split(data, "\n") {
		if k, _, ok := strings.Cut(l, " = "); ok {
			keys[k] = true
		}
	}
	return len(keys)
}

func listeningLines(data string) int {
	n := 0
	for _, l := range strings.Split(data, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && (f[0] == "tcp" && f[1] == "LISTEN" || f[0] == "udp" && f[1] == "UNCONN") {
			n++
		}
	}
	return n
}

// TestStateFixtures parses every recorded output of the line-by-line
// commands: no error, every line understood, one entry per line.
func TestStateFixtures(t *testing.T) {
	for kind, p := range stateParsers {
		for _, path := range fixtures(t, kind) {
			t.Run(path, func(t *testing.T) {
				data := readFixture(t, path)
				n, bad, err := p.parse(path, strings.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range bad {
					t.Errorf("%s:%d: not understood (%s): %q", u.File, u.Line, u.Reason, u.Text)
				}
				if want := p.count(data); n != want {
					t.Errorf("%d entries, want %d", n, want)
				}
			})
		}
	}
}

// TestStateNotTheCommand: a file that is some other command's output is an
// *Error naming the file and its first line; one bad line among good ones
// is kept and reported, the rest read.
func TestStateNotTheCommand(t *testing.T) {
	addr := readFixture(t, cmdout("docker-shaped", "netns", "host", "ip-addr.txt"))
	for kind, p := range stateParsers {
		if kind == "sysctl" {
			continue // ip addr has no "key = value" line, but a generic key=value file could
		}
		_, _, err := p.parse("x.txt", strings.NewReader("\n"+addr))
		var pe *Error
		if !errors.As(err, &pe) || pe.File != "x.txt" || pe.Line != 2 || !strings.Contains(err.Error(), "not ") {
			t.Errorf("%s of ip addr output: %v, want *Error at x.txt:2", kind, err)
		}
	}
	_, _, err := Sysctl("x.txt", strings.NewReader("1\n0\n"))
	if err == nil || err.Error() != `x.txt:1: not sysctl output: not "key = value": "1"` {
		t.Errorf("sysctl -n output: %v", err)
	}

	routes, bad, err := IPRoute("r.txt", strings.NewReader("default via 10.0.0.1 dev eth0\n10.1.0.0/16 via banana dev eth0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []topology.Unparsed{{File: "r.txt", Line: 2, Text: "10.1.0.0/16 via banana dev eth0", Reason: `bad gateway "banana"`}}
	if d := cmp.Diff(want, bad); d != "" || len(routes) != 1 {
		t.Errorf("routes %v, unparsed (-want +got):\n%s", routes, d)
	}
}

// TestStateEmpty: an empty output is "collected, nothing there", never nil.
func TestStateEmpty(t *testing.T) {
	checks := map[string]bool{}
	r, _, err1 := IPRoute("e", strings.NewReader(""))
	n, _, err2 := IPNeigh("e", strings.NewReader(""))
	f, _, err3 := BridgeFDB("e", strings.NewReader("\n"))
	s, _, err4 := Sysctl("e", strings.NewReader(""))
	k, _, err5 := SS("e", strings.NewReader("Netid State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"))
	c, _, err6 := Conntrack("e", strings.NewReader("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n"))
	checks["routes"], checks["neigh"], checks["fdb"] = r != nil && len(r) == 0, n != nil && len(n) == 0, f != nil && len(f) == 0
	checks["sysctl"], checks["ss"], checks["conntrack"] = s != nil && len(s) == 0, k != nil && len(k) == 0, c != nil && len(c) == 0
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		t.Fatal(err)
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("%s: empty output read as nil or not empty", what)
		}
	}
}
