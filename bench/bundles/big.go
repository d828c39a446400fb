// Package bundles generates the bundles the benchmarks read with
// `meshtrace inspect --from`: a node whose iptables-save is 200 MB
// (WriteBig), and a 50-node swarm of 100 tasks a node (WriteSwarm).
package bundles

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CopyDir copies the bundle (or any tree of regular files) src to dst.
func CopyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}

// Big is a written big bundle.
type Big struct {
	Dir   string
	File  string // the big iptables-save.txt
	Size  int64
	Rules int // rules of the host's ruleset (the base's and the added)
}

// WriteBig copies the bundle base (fixtures/bundles/modern) to dir and
// grows its host's `iptables-save -c` to at least size bytes: the base's
// tables as recorded, and in filter a block-list of the shape fail2ban
// and threat-feed tools keep (DOCKER-USER jumps to BLOCKLIST-n chains of
// `-s ADDR/32 -j DROP` rules with comments, ports, conntrack states,
// LOG and REJECT variants, per-rule counters). Only filter grows, so the
// published paths stay the base's: what is measured is reading and
// holding the rules.
func WriteBig(base, dir string, size int64) (Big, error) {
	b := Big{Dir: dir, File: filepath.Join(dir, "netns", "host", "iptables-save.txt")}
	if err := CopyDir(base, dir); err != nil {
		return b, err
	}
	orig, err := os.ReadFile(b.File)
	if err != nil {
		return b, err
	}
	f, err := os.Create(b.File)
	if err != nil {
		return b, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	cw := &countWriter{w: w}
	// The base's tables, the block-list spliced into filter.
	text := string(orig)
	i := strings.Index(text, "*filter\n")
	j := i + strings.Index(text[i:], "\nCOMMIT\n")
	if i < 0 || j < i {
		f.Close()
		return b, fmt.Errorf("%s: no filter table to grow", b.File)
	}
	head, tail := text[:j+1], text[j+1:]
	b.Rules = countRules(text)
	// Chain declarations go before the first rule of the table.
	decl := strings.Index(head[i:], "\n[") + i + 1
	const chains = 64
	var declare strings.Builder
	for c := range chains {
		fmt.Fprintf(&declare, ":BLOCKLIST-%d - [0:0]\n", c)
	}
	io.WriteString(cw, head[:decl])
	io.WriteString(cw, declare.String())
	// DOCKER-USER's jumps go first, ahead of its RETURN.
	for c := range chains {
		fmt.Fprintf(cw, "[%d:%d] -A DOCKER-USER -j BLOCKLIST-%d\n", 4+c, 200+c*40, c)
		b.Rules++
	}
	io.WriteString(cw, head[decl:])
	for n := 0; cw.n+int64(len(tail)) < size; n++ {
		writeBlockRule(cw, n, n%chains)
		b.Rules++
	}
	io.WriteString(cw, tail)
	if err := w.Flush(); err != nil {
		f.Close()
		return b, err
	}
	if err := f.Close(); err != nil {
		return b, err
	}
	st, err := os.Stat(b.File)
	if err != nil {
		return b, err
	}
	b.Size = st.Size()
	return b, nil
}

// writeBlockRule writes the n-th block-list rule into chain c.
func writeBlockRule(w io.Writer, n, c int) {
	a := uint32(0x0b000000) + uint32(n)*7 // from 11.0.0.0, spread
	ip := fmt.Sprintf("%d.%d.%d.%d", a>>24, byte(a>>16), byte(a>>8), byte(a))
	pk, by := n%97, (n%97)*60
	switch n % 8 {
	case 0, 1, 2:
		fmt.Fprintf(w, "[%d:%d] -A BLOCKLIST-%d -s %s/32 -m comment --comment \"feed:spamhaus-drop id %d\" -j DROP\n", pk, by, c, ip, n)
	case 3:
		fmt.Fprintf(w, "[%d:%d] -A BLOCKLIST-%d -s %s/32 -p tcp -m multiport --dports 22,80,443,8080 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n", pk, by, c, ip)
	case 4:
		net := fmt.Sprintf("%d.%d.%d.0", a>>24, byte(a>>16), byte(a>>8))
		fmt.Fprintf(w, "[%d:%d] -A BLOCKLIST-%d -s %s/24 -i eth0 -p udp -m udp --dport %d -j DROP\n", pk, by, c, net, 1024+n%60000)
	case 5:
		fmt.Fprintf(w, "[%d:%d] -A BLOCKLIST-%d -s %s/32 -m limit --limit 5/min -j LOG --log-prefix \"blocked-%d \"\n", pk, by, c, ip, n%1000)
	case 6:
		fmt.Fprintf(w, "[%d:%d] -A BLOCKLIST-%d -s %s/32 -d 172.18.0.0/16 -o docker_gwbridge -j DROP\n", pk, by, c, ip)
	default:
		fmt.Fprintf(w, "[%d:%d] -A BLOCKLIST-%d ! -s %s/32 -p tcp -m tcp --dport %d --tcp-flags FIN,SYN,RST,ACK SYN -j RETURN\n", pk, by, c, ip, 1+n%65535)
	}
}

// countRules counts the -A lines of an iptables-save text.
func countRules(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "-A ") || (strings.HasPrefix(l, "[") && strings.Contains(l, "] -A ")) {
			n++
		}
	}
	return n
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
