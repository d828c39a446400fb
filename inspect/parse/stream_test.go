package parse

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// countingReader serves n bytes of fill, then (when tail is set) tail,
// counting what it served.
type countingReader struct {
	fill   byte
	n      int
	tail   string
	served int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		k := min(len(p), r.n)
		for i := range p[:k] {
			p[i] = r.fill
		}
		r.n -= k
		r.served += k
		return k, nil
	}
	if r.tail != "" {
		k := copy(p, r.tail)
		r.tail = r.tail[k:]
		r.served += k
		return k, nil
	}
	return 0, io.EOF
}

// parsers are every reader of this package, as (file, reader) -> error.
var parsers = map[string]func(string, io.Reader) error{
	"iptables-save": func(f string, r io.Reader) error { _, err := IptablesSave(f, r); return err },
	"ipvsadm":       func(f string, r io.Reader) error { _, err := Ipvsadm(f, r); return err },
	"ip addr":       func(f string, r io.Reader) error { _, err := IPAddr(f, r); return err },
	"ip route":      func(f string, r io.Reader) error { _, _, err := IPRoute(f, r); return err },
	"conntrack":     func(f string, r io.Reader) error { _, _, err := Conntrack(f, r); return err },
}

// TestEndlessLine: an input that never ends a line (a link to /dev/zero)
// is an error naming file and line as soon as the line passes MaxLine, with
// the reading bounded: the parsers do not read the rest.
func TestEndlessLine(t *testing.T) {
	for name, parse := range parsers {
		prefixes := []string{""}
		if name == "iptables-save" {
			prefixes = append(prefixes, "*filter\n:INPUT ACCEPT [0:0]\n")
		}
		for _, prefix := range prefixes {
			r := &countingReader{fill: 0, n: 64 << 20}
			err := parse("zero.txt", io.MultiReader(strings.NewReader(prefix), r))
			line := strings.Count(prefix, "\n") + 1
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "zero.txt" || pe.Line != line || !strings.Contains(err.Error(), "longer than") {
				t.Errorf("%s: error %v, want zero.txt:%d: line longer than ...", name, err, line)
			}
			if r.served > MaxLine+4*blockSize {
				t.Errorf("%s: read %d bytes of an endless line (MaxLine %d)", name, r.served, MaxLine)
			}
		}
	}
}

// TestLongLineNamed: one absurd line in a valid file is named by its line;
// lines up to MaxLine are read.
func TestLongLineNamed(t *testing.T) {
	long := strings.Repeat("a", MaxLine)
	in := "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment " + long[:MaxLine/2] + " -j ACCEPT\n" +
		"-A INPUT -m comment --comment " + long + " -j ACCEPT\nCOMMIT\n"
	_, err := IptablesSave("big.txt", strings.NewReader(in))
	if err == nil || err.Error() != "big.txt:4: line longer than 1048576 bytes (not a command's output?)" {
		t.Errorf("got %v", err)
	}
	in = strings.Replace(in, long, "b", 1)
	fw, err := IptablesSave("big.txt", strings.NewReader(in))
	if err != nil || fw.RuleCount() != 2 || len(fw.Table("filter").Chain("INPUT").Rules[0].Text) < MaxLine/2 {
		t.Errorf("a %d-byte line: %v", MaxLine/2, err)
	}
}

// TestStreamLinesAcrossBlocks: lines cut by the block boundaries, CRLF
// ends and a last line without a newline read as they are.
func TestStreamLinesAcrossBlocks(t *testing.T) {
	var want []string
	var b strings.Builder
	for i := 0; b.Len() < 5*blockSize; i++ {
		l := strings.Repeat("x", i%997)
		want = append(want, l)
		b.WriteString(l)
		if i%3 == 0 {
			b.WriteString("\r")
		}
		b.WriteString("\n")
	}
	want = append(want, "last")
	b.WriteString("last")
	ls := newLines("f", io.LimitReader(strings.NewReader(b.String()), int64(b.Len()))) // no WriteTo: plain Reads
	for i := 0; ; i++ {
		l, ok := ls.next()
		if !ok {
			if i != len(want) || ls.err() != nil {
				t.Fatalf("%d lines of %d, err %v", i, len(want), ls.err())
			}
			break
		}
		if i >= len(want) || l != want[i] || ls.n != i+1 {
			t.Fatalf("line %d: %q (n %d)", i+1, l, ls.n)
		}
	}
}

// TestMemoryFollowsTheModel: what a parse keeps is what the model holds:
// 64 MB of comment lines around one rule do not stay in memory with it.
func TestMemoryFollowsTheModel(t *testing.T) {
	before := heapInUse()
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n")
	comment := "# " + strings.Repeat("c", 1000) + "\n"
	for b.Len() < 32<<20 {
		b.WriteString(comment)
	}
	b.WriteString("-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT\n")
	for b.Len() < 64<<20 {
		b.WriteString(comment)
	}
	b.WriteString("COMMIT\n")
	in := b.String()
	b = strings.Builder{}
	fw, err := IptablesSave("c.txt", strings.NewReader(in))
	if err != nil || fw.RuleCount() != 1 {
		t.Fatal(err)
	}
	in = ""
	kept := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(fw)
	if kept > 8<<20 {
		t.Errorf("a one-rule firewall read from 64 MB keeps %d MB", kept>>20)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
