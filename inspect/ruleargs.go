package inspect

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// keepValidRules moves every rule of a bundle's iptables-save whose
// arguments iptables itself would refuse (a port past 65535, a prefix
// /99, a DNAT without an address, a mark wider than 32 bits, --every 0)
// from its chain to fw.Unparsed, naming file, line and the bad argument:
// such a line cannot come from a kernel, and read as it stands it would
// send path and doctor after ports and addresses that do not exist. The
// arguments checked are those meshtrace interprets (libxt_tcp, libxt_udp,
// libxt_multiport, libxt_mark, libxt_statistic, libxt_DNAT/SNAT,
// libxt_REDIRECT, libxt_MARK parse them the same way).
func keepValidRules(fw *topology.Firewall, file string) {
	if fw == nil {
		return
	}
	moved := false
	for _, t := range fw.Tables {
		for _, c := range t.Chains {
			kept := c.Rules[:0]
			for _, r := range c.Rules {
				if why := badRuleArg(r); why != "" {
					fw.Unparsed = append(fw.Unparsed, topology.Unparsed{File: file, Line: r.Line, Text: r.Text, Reason: why})
					moved = true
					continue
				}
				kept = append(kept, r)
			}
			c.Rules = kept
		}
	}
	if moved {
		sort.SliceStable(fw.Unparsed, func(i, j int) bool { return fw.Unparsed[i].Line < fw.Unparsed[j].Line })
	}
}

// badRuleArg says what argument of r iptables would refuse, "" when none.
func badRuleArg(r *topology.Rule) string {
	for _, h := range []struct {
		opt string
		v   *topology.Negatable
		ok  func(string) bool
	}{
		{"-s", r.Src, validAddrMask}, {"-d", r.Dst, validAddrMask},
		{"-i", r.InIface, validIface}, {"-o", r.OutIface, validIface},
		{"-p", r.Proto, validProto},
	} {
		if h.v != nil && !h.ok(h.v.Value) {
			return fmt.Sprintf("bad argument %s %q", h.opt, h.v.Value)
		}
	}
	for _, m := range r.Matches {
		for _, o := range m.Opts {
			if why := badOptArg(o); why != "" {
				return why
			}
		}
		if m.Name == "statistic" {
			if every, packet := m.Opt("every"), m.Opt("packet"); every != nil && packet != nil {
				e, _ := strconv.ParseUint(every.Arg(), 10, 32)
				if p, err := strconv.ParseUint(packet.Arg(), 10, 32); err != nil || p >= e {
					return fmt.Sprintf("bad argument --packet %q: must be 0 to --every - 1 (%s)", packet.Arg(), every.Arg())
				}
			}
		}
	}
	for _, o := range r.TargetOpts {
		if why := badOptArg(o); why != "" {
			return why
		}
	}
	switch r.Target {
	case "DNAT":
		if r.TargetOpt("to-destination") == nil {
			return "DNAT without --to-destination"
		}
	case "SNAT":
		if r.TargetOpt("to-source") == nil {
			return "SNAT without --to-source"
		}
	}
	return ""
}

// badOptArg checks one option's arguments by its name.
func badOptArg(o topology.Option) string {
	var ok func(string) bool
	want := ""
	switch o.Name {
	case "dport", "sport", "destination-port", "source-port":
		ok, want = validPortRange(":"), "a port 0-65535 or a range lo:hi"
	case "dports", "sports", "ports", "destination-ports", "source-ports":
		ok, want = validPortList, "up to 15 ports or ranges lo:hi, 0-65535, comma-separated"
	case "to-ports":
		ok, want = validPortRange("-"), "a port 0-65535 or a range lo-hi"
	case "to-destination", "to-source":
		ok, want = validNATRange, "ADDRESS[-ADDRESS][:PORT[-PORT]]"
	case "mark", "set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark":
		ok, want = validMark, "a 32-bit value[/mask]"
	case "every":
		ok, want = func(s string) bool { n, err := strconv.ParseUint(s, 10, 32); return err == nil && n >= 1 }, "a count of at least 1"
	case "packet":
		ok, want = func(s string) bool { _, err := strconv.ParseUint(s, 10, 32); return err == nil }, "a count from 0"
	case "probability":
		ok, want = func(s string) bool { f, err := strconv.ParseFloat(s, 64); return err == nil && f >= 0 && f <= 1 }, "a probability 0-1"
	default:
		return ""
	}
	if len(o.Args) != 1 {
		return fmt.Sprintf("--%s needs one argument (%s)", o.Name, want)
	}
	if !ok(o.Args[0]) {
		return fmt.Sprintf("bad argument --%s %q: want %s", o.Name, o.Args[0], want)
	}
	return ""
}

func validPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n <= 65535
}

// validPortRange: "N" or "LO<sep>HI" with LO <= HI.
func validPortRange(sep string) func(string) bool {
	return func(s string) bool {
		lo, hi, isRange := strings.Cut(s, sep)
		if !isRange {
			return validPort(s)
		}
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		return err1 == nil && err2 == nil && a <= b
	}
}

func validPortList(s string) bool {
	parts := strings.Split(s, ",")
	if len(parts) > 15 {
		return false
	}
	for _, p := range parts {
		if !validPortRange(":")(p) {
			return false
		}
	}
	return true
}

// validAddrMask: ADDRESS, ADDRESS/LEN or IPv4ADDRESS/DOTTED-MASK.
func validAddrMask(s string) bool {
	addr, mask, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	if !hasMask {
		return true
	}
	if n, err := strconv.ParseUint(mask, 10, 8); err == nil {
		return int(n) <= a.BitLen()
	}
	m, err := netip.ParseAddr(mask)
	return err == nil && a.Is4() && m.Is4()
}

func validIface(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, "/ \t:")
}

func validProto(s string) bool {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return n <= 255
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return s != ""
}

// validNATRange: [ADDRESS[-ADDRESS]][:PORT[-PORT]], IPv6 addresses in
// brackets when a port follows.
func validNATRange(s string) bool {
	addrs, ports := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return false
		}
		addrs, ports = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if s[end+1:] != "" && !strings.HasPrefix(s[end+1:], ":") {
			return false
		}
	} else if strings.Count(s, ":") == 1 {
		addrs, ports, _ = strings.Cut(s, ":")
		if ports == "" {
			return false
		}
	}
	if addrs == "" && ports == "" {
		return false
	}
	if addrs != "" {
		lo, hi, isRange := strings.Cut(addrs, "-")
		if _, err := netip.ParseAddr(lo); err != nil {
			return false
		}
		if isRange {
			if _, err := netip.ParseAddr(hi); err != nil {
				return false
			}
		}
	}
	return ports == "" || validPortRange("-")(ports)
}

// validMark: VALUE or VALUE/MASK, each a 32-bit number (0x... or decimal).
func validMark(s string) bool {
	v, m, hasMask := strings.Cut(s, "/")
	if _, err := strconv.ParseUint(v, 0, 32); err != nil {
		return false
	}
	if hasMask {
		_, err := strconv.ParseUint(m, 0, 32)
		return err == nil
	}
	return true
}
