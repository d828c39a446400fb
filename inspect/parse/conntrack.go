package parse

import (
	"io"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Conntrack parses `conntrack -L` (also `-o extended`, whose lines start
// with "ipv4     2") into entries in file order:
//
//	tcp      6 115 TIME_WAIT src=192.168.77.9 dst=172.18.0.2 sport=48980 dport=8080 src=10.0.0.6 dst=10.0.0.2 sport=8080 dport=48980 [ASSURED] mark=0 use=1
//
// The protocol is named from its number as the live reader names it
// (topology.ProtoName: "unknown 2" is "2"), then the timeout, the TCP
// state (only TCP's is kept, as live; the kernel's SYN_SENT2, which
// conntrack prints LISTEN, keeps the kernel's name), the original tuple (the
// first src= dst= [sport= dport=]) and the reply tuple (the second), mark=
// and zone=. Flags ([ASSURED], [UNREPLIED]) and other fields (use=, id=,
// secctx=, zone-orig=, …) are skipped; ICMP's type= code= id= leave the
// ports 0. conntrack's summary line ("conntrack v1.4.7 (conntrack-tools): N
// flow entries have been shown.", on its standard error) is skipped too,
// should it be in the file.
func Conntrack(file string, r io.Reader) ([]topology.Conntrack, []topology.Unparsed, error) {
	out := []topology.Conntrack{}
	bad, err := linewise(file, "conntrack -L", r, func(_ int, _ string, f []string) string {
		if f[0] == "conntrack" && len(f) > 1 && strings.HasPrefix(f[1], "v") {
			return ""
		}
		c, why := conntrackEntry(f)
		if why != "" {
			return why
		}
		out = append(out, c)
		return ""
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

func conntrackEntry(f []string) (topology.Conntrack, string) {
	var c topology.Conntrack
	if (f[0] == "ipv4" || f[0] == "ipv6") && len(f) > 1 {
		f = f[2:] // -o extended: the layer 3 name and number
	}
	if len(f) < 3 {
		return c, "want PROTO NUMBER TIMEOUT src=… dst=…"
	}
	num, ok := atoi(f[1])
	if !ok || num > 255 {
		return c, "bad protocol number " + quote(f[1])
	}
	c.Proto = topology.ProtoName(uint8(num))
	to, ok := atou(f[2])
	if !ok || to > 1<<32-1 {
		return c, "bad timeout " + quote(f[2])
	}
	c.Timeout = uint32(to)
	f = f[3:]
	if len(f) > 0 && !strings.ContainsAny(f[0], "=[") {
		if c.Proto == "tcp" {
			c.State = f[0]
			if c.State == "LISTEN" { // TCP_CONNTRACK_SYN_SENT2 = TCP_CONNTRACK_LISTEN
				c.State = "SYN_SENT2"
			}
		}
		f = f[1:]
	}
	tuples := 0 // the tuple src= last opened: 1 orig, 2 reply
	t := func() *topology.Tuple {
		if tuples == 2 {
			return &c.Reply
		}
		return &c.Orig
	}
	for _, w := range f {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue // [ASSURED], [UNREPLIED], …
		}
		switch k {
		case "src", "dst":
			if k == "src" {
				if tuples == 2 {
					return c, "a third tuple"
				}
				tuples++
			}
			if tuples == 0 {
				return c, "dst= before src="
			}
			a, err := netip.ParseAddr(v)
			if err != nil {
				return c, "bad address " + quote(w)
			}
			if k == "src" {
				t().Src = a.Unmap()
			} else {
				t().Dst = a.Unmap()
			}
		case "sport", "dport":
			n, ok := atoi(v)
			if !ok || n > 65535 || tuples == 0 {
				return c, "bad " + quote(w)
			}
			if k == "sport" {
				t().SPort = uint16(n)
			} else {
				t().DPort = uint16(n)
			}
		case "mark":
			n, ok := atou(v)
			if !ok || n > 1<<32-1 {
				return c, "bad " + quote(w)
			}
			c.Mark = uint32(n)
		case "zone":
			n, ok := atoi(v)
			if !ok || n > 65535 {
				return c, "bad " + quote(w)
			}
			c.Zone = uint16(n)
		}
	}
	if !c.Orig.Src.IsValid() || !c.Orig.Dst.IsValid() || !c.Reply.Src.IsValid() || !c.Reply.Dst.IsValid() {
		return c, "want an original and a reply tuple (src= dst= twice)"
	}
	return c, ""
}
