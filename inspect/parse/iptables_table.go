package parse

import (
	"io"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// builtin reports whether chain is a built-in chain of table.
func builtin(table, chain string) bool { return topology.Builtin(table, chain) }

// IptablesTable reads one table's rules in whichever of the formats people
// paste it comes, detected from the first non-blank line:
//
//   - `iptables -t TABLE -S` ("-P INPUT ACCEPT", "-N DOCKER", "-A ..."),
//     with -v its counters ("-c PACKETS BYTES") too;
//   - `iptables -t TABLE -L -n -v [-x] [--line-numbers]` ("Chain INPUT
//     (policy ACCEPT ...)" and a column header, see IptablesList);
//   - `iptables-save [-c] [-t TABLE]` (only TABLE is kept).
//
// (`iptables -S` and `iptables -L` without -t list the filter table.) The
// result is a Firewall holding that one table; the -S and -L formats say
// nothing of the backend. Damage is an *Error naming file and line, as for
// IptablesSave; so is a listing of another table (a built-in chain TABLE
// does not have) or a rule argument that does not parse.
func IptablesTable(file, table string, r io.Reader) (*topology.Firewall, error) {
	if !builtin(table, "OUTPUT") {
		return nil, errorf(file, 0, "unknown iptables table %q", table)
	}
	ls := newLines(file, r)
	for {
		line, ok := ls.next()
		if !ok {
			if err := ls.err(); err != nil {
				return nil, err
			}
			// empty: the table has no chains to show (not loaded)
			return &topology.Firewall{Tables: []*topology.Table{{Name: table, Chains: []*topology.Chain{}}}}, nil
		}
		s := trimSpace(line)
		switch {
		case s == "":
			continue
		case strings.HasPrefix(s, "-P ") || strings.HasPrefix(s, "-N ") || strings.HasPrefix(s, "-A "):
			return parseIptablesS(file, table, ls, s)
		case strings.HasPrefix(s, "Chain "):
			return parseIptablesL(file, table, ls, line)
		case s[0] == '#' || s[0] == '*':
			fw, err := parseIptables(file, ls, s)
			if err != nil {
				return nil, err
			}
			return onlyTable(file, table, fw)
		}
		return nil, errorf(file, ls.n, "not iptables -S, iptables -L -n -v or iptables-save output: %q", clip(s))
	}
}

// onlyTable keeps table of an iptables-save read for one table's file.
func onlyTable(file, table string, fw *topology.Firewall) (*topology.Firewall, error) {
	t := fw.Table(table)
	if t == nil {
		var names []string
		for _, t := range fw.Tables {
			names = append(names, t.Name)
		}
		return nil, errorf(file, 0, "iptables-save output without table %s (it has %s)", table, strings.Join(names, ", "))
	}
	fw.Tables = []*topology.Table{t}
	return fw, nil
}

// parseIptablesS reads `iptables -t TABLE -S [-v]` from its first line on.
// It is iptables-save's rule syntax (the same save functions print it)
// inside one implicit table, with -P for the built-in chains' policies, -N
// for user chains and, with -v, "-c PACKETS BYTES" in policies and rules.
func parseIptablesS(file, table string, ls *lines, first string) (*topology.Firewall, error) {
	p := newIptParser(file)
	p.table = &topology.Table{Name: table, Chains: []*topology.Chain{}}
	p.tline = ls.n
	p.fw.Tables = append(p.fw.Tables, p.table)
	if err := ls.each(first, func(line string, n int) error { return p.sLine(trimSpace(line), n) }); err != nil {
		return nil, err
	}
	if err := p.bad.err(file, p.fw.Unparsed); err != nil {
		return nil, err
	}
	return p.fw, nil
}

func (p *iptParser) sLine(s string, n int) error {
	if len(s) < 3 || s[0] != '-' || s[2] != ' ' {
		return errorf(p.file, n, "not an iptables -S line: %q", clip(s))
	}
	switch s[1] {
	case 'P':
		f := fields(p.rp.fbuf[:0], s)
		p.rp.fbuf = f
		c := &topology.Chain{Rules: []*topology.Rule{}}
		switch {
		case len(f) == 3:
		case len(f) == 6 && f[3] == "-c":
			var ok1, ok2 bool
			c.Packets, ok1 = atou(f[4])
			c.Bytes, ok2 = atou(f[5])
			if !ok1 || !ok2 {
				return errorf(p.file, n, "bad counters %q", clip(s))
			}
		default:
			return errorf(p.file, n, "bad policy line %q: want \"-P CHAIN POLICY [-c PACKETS BYTES]\"", clip(s))
		}
		c.Name, c.Policy = f[1], f[2]
		if c.Policy != "ACCEPT" && c.Policy != "DROP" {
			return errorf(p.file, n, "-P %s: bad policy %q", c.Name, c.Policy)
		}
		if !builtin(p.table.Name, c.Name) {
			return errorf(p.file, n, "-P %s: the %s table has no built-in chain %s (a listing of another table?)", c.Name, p.table.Name, c.Name)
		}
		return p.addChain(c, n)
	case 'N':
		return p.ruleLine(s, n)
	case 'A':
		text, pk, by, has, why := cutSCounters(s)
		if why != "" {
			return errorf(p.file, n, "%s", why)
		}
		return p.rule(s, text, n, has, pk, by)
	}
	return errorf(p.file, n, "not an iptables -S line: %q", clip(s))
}

// word cuts the first word (after blanks) off s.
func word(s string) (w, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// cutSCounters removes the "-c PACKETS BYTES" iptables -S -v puts among a
// rule's words (before the target, iptables-nft; or at the end) and returns
// the rule without it.
func cutSCounters(s string) (text string, pk, by uint64, has bool, why string) {
	i := 0
	for i < len(s) {
		if s[i] == '"' { // skip a quoted argument (xtables_save_string)
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			i++
			continue
		}
		if strings.HasPrefix(s[i:], " -c ") {
			rest := s[i+4:]
			w1, rest := word(rest)
			w2, rest := word(rest)
			var ok1, ok2 bool
			pk, ok1 = atou(w1)
			by, ok2 = atou(w2)
			if !ok1 || !ok2 {
				return "", 0, 0, false, "bad counters -c " + clip(w1+" "+w2)
			}
			return s[:i] + rest, pk, by, true, ""
		}
		i++
	}
	return s, 0, 0, false, ""
}
