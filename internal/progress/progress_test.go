package progress

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestNotATerminal: off a terminal (a file, a pipe) there is no Line, and
// a nil Line's methods write nothing and do not panic.
func TestNotATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, out := range []*os.File{f, w} {
		l := OnTerminal(out, "collect")
		if l != nil {
			t.Fatalf("%s: a Line off a terminal", out.Name())
		}
		l.Say("x %d", 1)
		l.Count(1, 2, "host")
		l.Counter(3).Done("a")
		l.Clear()
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("wrote %d bytes to a file", st.Size())
	}
}

// TestLine: the line is rewritten in place (carriage return, erase to the
// end), cut to the terminal's width, escaped, and cleared once.
func TestLine(t *testing.T) {
	var b bytes.Buffer
	l := To(&b, "collect", 30)
	l.Count(3, 40, "ingress_sbox")
	l.Say("a very long line that does not fit in thirty columns")
	l.Say("bad\x1b[2Jname")
	l.Clear()
	l.Clear()
	want := "\r\x1b[Kcollect: 3/40 ingress_sbox" +
		"\r\x1b[Kcollect: a very long line th…" +
		"\r\x1b[Kcollect: bad\\x1b[2Jname" +
		"\r\x1b[K"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}

// TestCounter: workers counting at once reach the total, each count shown
// whole.
func TestCounter(t *testing.T) {
	var b bytes.Buffer
	c := To(&b, "swarm collect", 200).Counter(50)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { c.Done("node") })
	}
	wg.Wait()
	lines := strings.Split(b.String(), "\r\x1b[K")[1:]
	if len(lines) != 51 || lines[0] != "swarm collect: 0/50" || !strings.Contains(b.String(), "swarm collect: 50/50 node") {
		t.Errorf("%d lines: %q", len(lines), b.String())
	}
}
