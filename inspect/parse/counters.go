package parse

import (
	"io"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// SNMP parses /proc/net/snmp or /proc/net/netstat (`cat` of either; both
// are pairs of lines, a header naming the fields and a line of values,
// each starting with the same "Prefix:"), and the NAME VALUE [RATE]
// lines of `nstat -az` and /proc/net/snmp6, into counters named as nstat
// names them: the prefix then the field ("Ip:" "OutNoRoutes" is
// IpOutNoRoutes, "TcpExt:" "ListenDrops" TcpExtListenDrops). Every field is
// kept. Values are signed: Tcp MaxConn is -1 (RFC 2012's "dynamic").
func SNMP(file string, r io.Reader) (map[string]int64, []topology.Unparsed, error) {
	out := map[string]int64{}
	var header []string // the fields of the last header line, prefix first
	bad, err := linewise(file, "/proc/net/snmp", r, func(_ int, _ string, f []string) string {
		if strings.HasPrefix(f[0], "#") { // nstat's "#kernel"
			return ""
		}
		if !strings.HasSuffix(f[0], ":") {
			return snmpPair(out, f)
		}
		prefix := strings.TrimSuffix(f[0], ":")
		if prefix == "" || len(f) < 2 {
			return "want PREFIX: FIELDS… or PREFIX: VALUES…"
		}
		if _, numeric := strconv.ParseInt(f[1], 10, 64); numeric != nil {
			header = append(header[:0], f...)
			for _, name := range f[1:] {
				if !isCounterName(name) {
					header = header[:0]
					return "bad field name " + quote(name)
				}
			}
			return ""
		}
		if len(header) == 0 || header[0] != f[0] {
			header = header[:0]
			return "values without their header line " + quote(f[0]+" FIELDS…")
		}
		if len(header) != len(f) {
			why := "the header names " + strconv.Itoa(len(header)-1) + " fields, this line has " + strconv.Itoa(len(f)-1) + " values"
			header = header[:0]
			return why
		}
		vals := make([]int64, len(f)-1)
		for i, v := range f[1:] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				why := "bad value " + quote(v) + " of " + prefix + header[i+1]
				header = header[:0]
				return why
			}
			vals[i] = n
		}
		for i, name := range header[1:] {
			out[prefix+name] = vals[i]
		}
		header = header[:0]
		return ""
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

// snmpPair reads nstat's "NAME VALUE [RATE]" or snmp6's "NAME VALUE".
func snmpPair(out map[string]int64, f []string) string {
	if len(f) < 2 || len(f) > 3 || !isCounterName(f[0]) {
		return "want PREFIX: FIELDS…, PREFIX: VALUES… or NAME VALUE"
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return "bad value " + quote(f[1])
	}
	out[f[0]] = n
	return ""
}

func isCounterName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// ConntrackStat parses /proc/net/stat/nf_conntrack (a header naming the
// columns, then one row of hexadecimal values per CPU,
// nf_conntrack_standalone.c: ct_cpu_seq_show) or `conntrack -S` (one line
// per CPU: "cpu=0 found=0 invalid=3 … insert_failed=0 drop=0 …"), summing
// every column over the CPUs; "entries", the namespace's table size, the
// same on every row, is kept once.
func ConntrackStat(file string, r io.Reader) (map[string]uint64, []topology.Unparsed, error) {
	out := map[string]uint64{}
	var header []string
	bad, err := linewise(file, "/proc/net/stat/nf_conntrack", r, func(_ int, _ string, f []string) string {
		if strings.HasPrefix(f[0], "cpu=") {
			return conntrackStatLine(out, f)
		}
		if _, err := strconv.ParseUint(f[0], 16, 64); err != nil {
			header = append(header[:0], f...)
			for _, h := range header {
				if !isCounterName(h) {
					header = header[:0]
					return "want the column names or a row of hexadecimal values"
				}
			}
			return ""
		}
		if len(header) == 0 {
			return "values before the column names"
		}
		if len(f) != len(header) {
			return "the header names " + strconv.Itoa(len(header)) + " columns, this row has " + strconv.Itoa(len(f))
		}
		vals := make([]uint64, len(f))
		for i, v := range f {
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return "bad value " + quote(v) + " of " + header[i]
			}
			vals[i] = n
		}
		for i, name := range header {
			if name == "entries" {
				out[name] = vals[i]
			} else {
				out[name] += vals[i]
			}
		}
		return ""
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

// conntrackStatLine reads one CPU's line of `conntrack -S`.
func conntrackStatLine(out map[string]uint64, f []string) string {
	vals := make(map[string]uint64, len(f))
	for _, w := range f[1:] {
		k, v, ok := strings.Cut(w, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || !isCounterName(k) || err != nil {
			return "bad counter " + quote(w)
		}
		vals[k] = n
	}
	for k, n := range vals {
		out[k] += n
	}
	return ""
}

// linkStatColumns name the columns of `ip -s [-s] link` by the line they
// are on and the word iproute2 prints above them (ipaddress.c,
// print_stats64; "overrun" and "missed" changed places in iproute2 5.x,
// which the header says; "heartbeat" became "heartbt" in 5.11), as the
// kernel names the counters in sysfs.
var linkStatColumns = map[string]map[string]string{
	"RX:": {"bytes": "rx_bytes", "packets": "rx_packets", "errors": "rx_errors", "dropped": "rx_dropped",
		"missed": "rx_missed_errors", "overrun": "rx_over_errors", "mcast": "multicast", "compressed": "rx_compressed"},
	"RX errors:": {"length": "rx_length_errors", "crc": "rx_crc_errors", "frame": "rx_frame_errors",
		"fifo": "rx_fifo_errors", "overrun": "rx_over_errors", "missed": "rx_missed_errors",
		"nohandler": "rx_nohandler", "otherhost": "rx_otherhost_dropped"},
	"TX:": {"bytes": "tx_bytes", "packets": "tx_packets", "errors": "tx_errors", "dropped": "tx_dropped",
		"carrier": "tx_carrier_errors", "collsns": "collisions", "compressed": "tx_compressed"},
	"TX errors:": {"aborted": "tx_aborted_errors", "fifo": "tx_fifo_errors", "window": "tx_window_errors",
		"heartbt": "tx_heartbeat_errors", "heartbeat": "tx_heartbeat_errors", "transns": "carrier_changes"},
}

// IPLinkStats parses `ip -s [-s] link [show]` (also `ip -s addr`) into
// each link's counters by link name: after a link's first line ("7:
// eth0@if8: <…> mtu …"), each statistics header ("RX:", "RX errors:",
// "TX:", "TX errors:" and the column names) gives the names of the numbers
// on the line below it. Other lines (link/ether, inet, altname, …) carry
// no counters and are skipped.
func IPLinkStats(file string, r io.Reader) (map[string]topology.LinkCounters, []topology.Unparsed, error) {
	out := map[string]topology.LinkCounters{}
	var cur topology.LinkCounters
	var cols []string // the counters the next line holds, nil: none expected
	bad, err := linewise(file, "ip -s link", r, func(_ int, line string, f []string) string {
		if line[0] != ' ' && line[0] != '\t' {
			cur, cols = nil, nil
			name, why := linkStatsName(f)
			if why != "" {
				return why
			}
			if out[name] != nil {
				return "link " + quote(name) + " appears twice"
			}
			cur = topology.LinkCounters{}
			out[name] = cur
			return ""
		}
		if cols != nil {
			want := cols
			cols = nil
			if len(f) != len(want) {
				return "the header names " + strconv.Itoa(len(want)) + " counters, this line has " + strconv.Itoa(len(f))
			}
			for i, v := range f {
				n, ok := atou(v)
				if !ok {
					return "bad counter " + quote(v) + " (ip -h prints rounded numbers: use ip -s without -h)"
				}
				cur[want[i]] = n
			}
			return ""
		}
		key, words := f[0], f[1:]
		if key == "RX" || key == "TX" {
			if len(f) < 2 || f[1] != "errors:" {
				return "unknown statistics header"
			}
			key, words = key+" errors:", f[2:]
		}
		if cur == nil {
			return "indented line before any link"
		}
		names, ok := linkStatColumns[key]
		if !ok {
			return "" // link/ether, inet, altname, …
		}
		if contains(words, "bcast") {
			return "" // a VF's statistics ("vf 0 …"; print_vf_stats64): not the link's
		}
		cols = make([]string, len(words))
		for i, w := range words {
			if cols[i] = names[w]; cols[i] == "" {
				cols = nil
				return "unknown counter " + quote(w) + " under " + quote(key)
			}
		}
		return ""
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

// linkStatsName reads the link's name from "N: NAME[@PEER]: <FLAGS> …".
func linkStatsName(f []string) (string, string) {
	if len(f) < 3 || !strings.HasSuffix(f[0], ":") || !strings.HasSuffix(f[1], ":") || !strings.HasPrefix(f[2], "<") {
		return "", "want a link's first line, N: NAME: <FLAGS> …"
	}
	if n, ok := atoi(strings.TrimSuffix(f[0], ":")); !ok || n == 0 {
		return "", "bad link index " + quote(f[0])
	}
	name := strings.TrimSuffix(f[1], ":")
	if i := strings.LastIndexByte(name, '@'); i > 0 {
		name = name[:i]
	}
	if name == "" {
		return "", "no link name"
	}
	return name, ""
}
