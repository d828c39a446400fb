package parse

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// The output of `ip xfrm state` and `ip xfrm policy` as iproute2 prints it
// (ip/ipxfrm.c: xfrm_state_info_print, xfrm_policy_info_print and the
// helpers they call; ip/xfrm_state.c, ip/xfrm_policy.c), with or without
// -s, and with the keys shown, hidden by iproute2 (`ip xfrm state list
// nokeys`, iproute2 5.1+) or by RedactXfrmKeys. An entry starts with a line
// at the margin ("src A dst B" for an SA, the selector for a policy); the
// lines indented below it describe it:
//
//	src 192.0.2.10 dst 192.0.2.11
//		proto esp spi 0x5e4c7f1a reqid 13681891 mode transport
//		replay-window 0
//		aead rfc4106(gcm(aes)) <<Keys hidden>> 64
//		anti-replay context: seq 0x0, oseq 0x2a, bitmap 0x00000000
//		sel src 0.0.0.0/0 dst 0.0.0.0/0
//
//	src 192.0.2.10/32 dst 192.0.2.11/32 proto udp dport 4789
//		dir out priority 0 ptype main
//		mark 0xd0c4e3/0xffffffff
//		tmpl src 192.0.2.10 dst 192.0.2.11
//			proto esp spi 0x5e4c7f1a reqid 13681891 mode transport
//
// A line not understood is kept as an Unparsed with its reason; the lines
// of an entry whose first line is not understood are too (they describe
// nothing the model has). Keys are never kept.

// XfrmKeysHidden is what iproute2 prints for a key with `nokeys`, and what
// RedactXfrmKeys puts in a key's place.
const XfrmKeysHidden = "<<Keys hidden>>"

// RedactXfrmKeys replaces every key in `ip xfrm state` output with
// XfrmKeysHidden: on each indented line that prints an algorithm ("enc",
// "auth", "auth-trunc", "aead", "comp" first), every word after the kind
// that starts with 0x (iproute2 prints the algorithm's name, then the key).
// The key's length stays: where iproute2 did not print it (without -s), "
// (N bits)" is written after the mark. A line without a key is left as it
// is, byte for byte. The result reads as `ip -s xfrm state list nokeys`
// output would if that kept the lengths.
func RedactXfrmKeys(out []byte) []byte {
	var b strings.Builder
	b.Grow(len(out))
	for line := range strings.SplitAfterSeq(string(out), "\n") {
		body := strings.TrimRight(line, "\r\n")
		f := fields(nil, body)
		if len(f) < 2 || !isAlgoKind(f[0]) || body[0] != ' ' && body[0] != '\t' {
			b.WriteString(line)
			continue
		}
		w, changed := make([]string, 0, len(f)+2), false
		for i, word := range f {
			if i == 0 || !(strings.HasPrefix(word, "0x") || strings.HasPrefix(word, "0X")) {
				w = append(w, word)
				continue
			}
			changed = true
			w = append(w, XfrmKeysHidden)
			if i+1 >= len(f) || !strings.HasPrefix(f[i+1], "(") {
				w = append(w, "("+strconv.Itoa(4*(len(word)-2))+" bits)")
			}
		}
		if !changed {
			b.WriteString(line)
			continue
		}
		indent := body[:len(body)-len(strings.TrimLeft(body, " \t"))]
		b.WriteString(indent + strings.Join(w, " ") + line[len(body):])
	}
	return []byte(b.String())
}

func isAlgoKind(s string) bool {
	switch topology.XfrmAlgoKind(s) {
	case topology.AlgoEnc, topology.AlgoAuth, topology.AlgoAuthTrunc, topology.AlgoAEAD, topology.AlgoComp:
		return true
	}
	return false
}

// XfrmState parses `ip [-s] xfrm state [list [nokeys]]`.
func XfrmState(file string, r io.Reader) ([]topology.XfrmState, []topology.Unparsed, error) {
	out := []topology.XfrmState{}
	var cur *topology.XfrmState
	skip := false    // the current entry's first line was not understood
	current := false // the next "N(bytes), M(packets)" line is the SA's
	bad, err := linewise(file, "ip xfrm state", r, func(_ int, line string, f []string) string {
		if line[0] != ' ' && line[0] != '\t' {
			cur, skip, current = nil, false, false
			if len(f) != 4 || f[0] != "src" || f[2] != "dst" {
				skip = true
				return "want an SA's first line, src ADDR dst ADDR"
			}
			src, err1 := netip.ParseAddr(f[1])
			dst, err2 := netip.ParseAddr(f[3])
			if err1 != nil || err2 != nil {
				skip = true
				return "bad address in " + quote(line)
			}
			out = append(out, topology.XfrmState{Src: src, Dst: dst})
			cur = &out[len(out)-1]
			return ""
		}
		if skip {
			return "part of an SA whose first line was not understood"
		}
		if cur == nil {
			return "indented line before any SA"
		}
		return xfrmStateLine(cur, &current, f)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

// xfrmStateLine reads one indented line of an SA into s.
func xfrmStateLine(s *topology.XfrmState, current *bool, f []string) string {
	switch f[0] {
	case "proto":
		proto, spi, reqid, mode, why := xfrmID(f)
		if why != "" {
			return why
		}
		s.Proto, s.SPI, s.Reqid, s.Mode = proto, spi, reqid, mode
	case "replay-window":
		if len(f) >= 6 && f[2] == "replay" && f[4] == "failed" { // -s: stats
			return xfrmStats(s, f)
		}
		return xfrmReplayFlags(s, f)
	case "mark", "output-mark":
		return xfrmMarks(&s.Mark, &s.OutputMark, f)
	case "enc", "auth", "auth-trunc", "aead", "comp":
		a, why := xfrmAlgo(f)
		if why != "" {
			return why
		}
		s.Algos = append(s.Algos, a)
	case "encap":
		return xfrmEncap(s, f)
	case "sel":
		v, why := xfrmSelector(f[1:])
		if why != "" {
			return why
		}
		s.Sel = &v
	case "if_id":
		v, ok := hexOrDec(f, 1)
		if !ok {
			return "bad if_id"
		}
		s.IfID = v
	case "dir":
		switch w, _ := after(f, 0); w {
		case "in":
			s.Dir = topology.SADirIn
		case "out":
			s.Dir = topology.SADirOut
		default:
			return "bad SA direction"
		}
	case "lifetime":
		*current = len(f) == 2 && f[1] == "current:"
	case "stats:", "limit:", "expire", "add", "coa", "lastused", "anti-replay", "seq-hi", "replay_window",
		"crypto", "tfcpad", "pcpu-num", "security":
		// lifetimes, times, replay state, offload, padding: not modelled
	default:
		if strings.HasSuffix(f[0], "(bytes),") && len(f) == 2 && strings.HasSuffix(f[1], "(packets)") {
			if !*current {
				return ""
			}
			return xfrmCurrent(s, f)
		}
		if isHexWords(f) { // the bitmap of an ESN replay state
			return ""
		}
		return "unknown SA attribute " + quote(f[0])
	}
	return ""
}

// xfrmID reads "proto P [spi 0xN[(DEC)]] reqid N[(0xN)] mode M".
func xfrmID(f []string) (proto topology.XfrmProto, spi topology.SPI, reqid uint32, mode topology.XfrmMode, why string) {
	var ok bool
	if len(f) < 2 {
		return 0, 0, 0, 0, "want proto P [spi S] reqid R mode M"
	}
	if proto, ok = topology.ParseXfrmProto(f[1]); !ok {
		return 0, 0, 0, 0, "bad transform protocol " + quote(f[1])
	}
	seen := 0
	for i := 2; i+1 < len(f); i += 2 {
		v := f[i+1]
		if j := strings.IndexByte(v, '('); j > 0 { // -s: "0x00000100(256)", "1(0x00000001)"
			v = v[:j]
		}
		switch f[i] {
		case "spi":
			n, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return 0, 0, 0, 0, "bad spi " + quote(f[i+1])
			}
			spi = topology.SPI(n)
		case "reqid":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return 0, 0, 0, 0, "bad reqid " + quote(f[i+1])
			}
			reqid = uint32(n)
			seen |= 1
		case "mode":
			if mode, ok = topology.ParseXfrmMode(v); !ok {
				return 0, 0, 0, 0, "bad mode " + quote(v)
			}
			seen |= 2
		default:
			return 0, 0, 0, 0, "unknown word " + quote(f[i])
		}
	}
	if seen != 3 || len(f)%2 != 0 {
		return 0, 0, 0, 0, "want proto P [spi S] reqid R mode M"
	}
	return proto, spi, reqid, mode, ""
}

// xfrmReplayFlags reads "replay-window N [seq 0xN] [flag F…] [extra_flag
// F…] [(0xBITS)]".
func xfrmReplayFlags(s *topology.XfrmState, f []string) string {
	if len(f) < 2 {
		return "bad replay-window"
	}
	n, ok := atou(f[1])
	if !ok || n > 1<<32-1 {
		return "bad replay-window"
	}
	s.ReplayWindow = uint32(n)
	extra := false
	for i := 2; i < len(f); i++ {
		switch w := f[i]; {
		case w == "seq":
			i++ // iproute2 prints it as "0x%08u": neither hex nor kept
		case w == "flag":
			extra = false
		case w == "extra_flag":
			extra = true
		case strings.HasPrefix(w, "(0x") && strings.HasSuffix(w, ")"):
		case extra:
			// dont-encap-dscp, oseq-may-wrap: not modelled
		case contains(topology.XfrmStateFlagNames[:], w):
			s.Flags = append(s.Flags, w)
		default:
			return "unknown state flag " + quote(w)
		}
	}
	return ""
}

func contains(s []string, w string) bool {
	for _, x := range s {
		if x == w {
			return true
		}
	}
	return false
}

// xfrmStats reads -s's "replay-window N replay N failed N".
func xfrmStats(s *topology.XfrmState, f []string) string {
	var v [3]uint32
	for i, j := range []int{1, 3, 5} {
		n, ok := atou(f[j])
		if !ok || n > 1<<32-1 {
			return "bad stats"
		}
		v[i] = uint32(n)
	}
	st := xfrmSAStats(s)
	st.OutOfWindow, st.Replay, st.IntegrityFailed = v[0], v[1], v[2]
	return ""
}

func xfrmSAStats(s *topology.XfrmState) *topology.XfrmSAStats {
	if s.Stats == nil {
		s.Stats = &topology.XfrmSAStats{}
	}
	return s.Stats
}

// xfrmCurrent reads -s's "N(bytes), M(packets)" under "lifetime current:".
func xfrmCurrent(s *topology.XfrmState, f []string) string {
	b, ok1 := atou(strings.TrimSuffix(f[0], "(bytes),"))
	p, ok2 := atou(strings.TrimSuffix(f[1], "(packets)"))
	if !ok1 || !ok2 {
		return "bad lifetime counters"
	}
	st := xfrmSAStats(s)
	st.Bytes, st.Packets = b, p
	return ""
}

// xfrmMarks reads "mark V/M [output-mark V[/M]]" or "output-mark V[/M]".
func xfrmMarks(mark, output **topology.XfrmMark, f []string) string {
	for i := 0; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return "bad mark"
		}
		v, m, ok := strings.Cut(f[i+1], "/")
		val, err1 := strconv.ParseUint(v, 0, 32)
		mask := uint64(0xffffffff)
		var err2 error
		if ok {
			mask, err2 = strconv.ParseUint(m, 0, 32)
		}
		if err1 != nil || err2 != nil {
			return "bad mark " + quote(f[i+1])
		}
		x := &topology.XfrmMark{Value: uint32(val), Mask: uint32(mask)}
		switch f[i] {
		case "mark":
			if !ok {
				return "bad mark " + quote(f[i+1])
			}
			*mark = x
		case "output-mark":
			if output == nil {
				return "output-mark on a policy"
			}
			*output = x
		default:
			return "unknown word " + quote(f[i])
		}
	}
	return ""
}

// xfrmAlgo reads "KIND NAME [KEY | <<Keys hidden>>] [(N bits)] [ICV |
// TRUNC]" (ipxfrm.c, __xfrm_algo_print and its callers).
func xfrmAlgo(f []string) (topology.XfrmAlgo, string) {
	a := topology.XfrmAlgo{Kind: topology.XfrmAlgoKind(f[0])}
	if len(f) < 2 || f[1] == "(ERROR" {
		return a, "truncated algorithm"
	}
	if strings.HasPrefix(f[1], "0x") || strings.HasPrefix(f[1], "0X") || strings.HasPrefix(f[1], "<<") {
		return a, "no algorithm name before the key"
	}
	a.Name = f[1]
	rest := f[2:]
	switch {
	case len(rest) >= 2 && rest[0] == "<<Keys" && rest[1] == "hidden>>":
		rest = rest[2:]
	case len(rest) >= 1 && strings.HasPrefix(rest[0], "0x"):
		a.KeyBits = 4 * (len(rest[0]) - 2)
		rest = rest[1:]
	}
	if len(rest) >= 2 && strings.HasPrefix(rest[0], "(") && rest[1] == "bits)" {
		n, ok := atoi(rest[0][1:])
		if !ok {
			return a, "bad key length"
		}
		a.KeyBits = n
		rest = rest[2:]
	}
	switch a.Kind {
	case topology.AlgoAEAD, topology.AlgoAuthTrunc:
		if len(rest) != 1 {
			return a, "want the " + string(a.Kind) + " length after the key"
		}
		n, ok := atoi(rest[0])
		if !ok {
			return a, "bad length " + quote(rest[0])
		}
		if a.Kind == topology.AlgoAEAD {
			a.ICVBits = n
		} else {
			a.TruncBits = n
		}
	default:
		if len(rest) != 0 {
			return a, "unexpected " + quote(rest[0]) + " after the key"
		}
	}
	return a, ""
}

// xfrmEncap reads "encap type T sport N dport N addr A".
func xfrmEncap(s *topology.XfrmState, f []string) string {
	if len(f) != 9 || f[1] != "type" || f[3] != "sport" || f[5] != "dport" || f[7] != "addr" {
		return "want encap type T sport N dport N addr A"
	}
	sp, ok1 := atoi(f[4])
	dp, ok2 := atoi(f[6])
	oa, err := netip.ParseAddr(f[8])
	if !ok1 || !ok2 || sp > 65535 || dp > 65535 || err != nil {
		return "bad encap " + quote(strings.Join(f, " "))
	}
	s.Encap = &topology.XfrmEncap{Type: f[2], SPort: uint16(sp), DPort: uint16(dp), OA: oa}
	return ""
}

// ipProtoNumbers are the names iproute2 prints for IP protocols
// (getprotobynumber: /etc/protocols of netbase) that a selector is likely
// to hold; any other prints as its number.
var ipProtoNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17, "dccp": 33, "ipv6": 41,
	"ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58,
	"ipv6-nonxt": 59, "ipv6-opts": 60, "ospf": 89, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103,
	"ipcomp": 108, "vrrp": 112, "l2tp": 115, "sctp": 132, "mobility-header": 135, "udplite": 136,
	"mpls-in-ip": 137,
}

// xfrmSelector reads "src P dst P [proto X] [sport N] [dport N] [type N]
// [code N] [key N] [dev D] [uid N]" (xfrm_selector_print).
func xfrmSelector(f []string) (topology.XfrmSelector, string) {
	var s topology.XfrmSelector
	if len(f) < 4 || f[0] != "src" || f[2] != "dst" {
		return s, "want src PREFIX dst PREFIX"
	}
	var err1, err2 error
	s.Src, err1 = netip.ParsePrefix(f[1])
	s.Dst, err2 = netip.ParsePrefix(f[3])
	if err1 != nil || err2 != nil {
		return s, "bad selector prefix in " + quote(f[1]+" "+f[3])
	}
	for i := 4; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return s, "no value after " + quote(f[i])
		}
		v := f[i+1]
		n, isNum := atoi(v)
		switch f[i] {
		case "proto":
			p, ok := ipProtoNumbers[v]
			if !ok {
				if !isNum || n > 255 || n == 0 {
					return s, "unknown protocol " + quote(v)
				}
				p = uint8(n)
			}
			s.Proto = p
		case "sport", "type":
			if !isNum || n > 65535 {
				return s, "bad " + f[i] + " " + quote(v)
			}
			s.SPort = uint16(n)
		case "dport", "code":
			if !isNum || n > 65535 {
				return s, "bad " + f[i] + " " + quote(v)
			}
			s.DPort = uint16(n)
		case "key":
			if !isNum || n > 1<<32-1 {
				return s, "bad key " + quote(v)
			}
			s.SPort, s.DPort = uint16(n>>16), uint16(n)
		case "dev":
			s.Dev = v
		case "uid", "(dport)":
		default:
			return s, "unknown selector word " + quote(f[i])
		}
	}
	return s, ""
}

func hexOrDec(f []string, i int) (uint32, bool) {
	if i >= len(f) {
		return 0, false
	}
	n, err := strconv.ParseUint(f[i], 0, 32)
	return uint32(n), err == nil
}

// isHexWords: every word is 8 hex digits (an ESN bitmap line).
func isHexWords(f []string) bool {
	for _, w := range f {
		if len(w) != 8 {
			return false
		}
		if _, err := strconv.ParseUint(w, 16, 32); err != nil {
			return false
		}
	}
	return true
}

// XfrmPolicy parses `ip [-s] xfrm policy [list]`.
func XfrmPolicy(file string, r io.Reader) ([]topology.XfrmPolicy, []topology.Unparsed, error) {
	out := []topology.XfrmPolicy{}
	var cur *topology.XfrmPolicy
	var tmpl *topology.XfrmTmpl // the template whose id line comes next
	skip := false
	bad, err := linewise(file, "ip xfrm policy", r, func(_ int, line string, f []string) string {
		if line[0] != ' ' && line[0] != '\t' {
			cur, tmpl, skip = nil, nil, false
			sel, why := xfrmSelector(f)
			if why != "" {
				skip = true
				return "want a policy's selector: " + why
			}
			out = append(out, topology.XfrmPolicy{Sel: sel})
			cur = &out[len(out)-1]
			return ""
		}
		if skip {
			return "part of a policy whose selector was not understood"
		}
		if cur == nil {
			return "indented line before any policy"
		}
		if tmpl != nil && f[0] == "proto" {
			proto, spi, reqid, mode, why := xfrmID(f)
			if why != "" {
				return why
			}
			tmpl.Proto, tmpl.SPI, tmpl.Reqid, tmpl.Mode = proto, spi, reqid, mode
			tmpl = nil
			return ""
		}
		tmpl = nil
		return xfrmPolicyLine(cur, &tmpl, f)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

// xfrmPolicyLine reads one indented line of a policy into p; a "tmpl"
// line adds a template and points tmpl at it for its id line.
func xfrmPolicyLine(p *topology.XfrmPolicy, tmpl **topology.XfrmTmpl, f []string) string {
	switch f[0] {
	case "dir", "socket":
		return xfrmPolicyDir(p, f)
	case "mark":
		return xfrmMarks(&p.Mark, nil, f)
	case "tmpl":
		if len(f) != 5 || f[1] != "src" || f[3] != "dst" {
			return "want tmpl src ADDR dst ADDR"
		}
		src, err1 := netip.ParseAddr(f[2])
		dst, err2 := netip.ParseAddr(f[4])
		if err1 != nil || err2 != nil {
			return "bad template address"
		}
		p.Tmpls = append(p.Tmpls, topology.XfrmTmpl{Src: src, Dst: dst})
		*tmpl = &p.Tmpls[len(p.Tmpls)-1]
	case "level":
		if len(p.Tmpls) == 0 || len(f) < 2 {
			return "level without a template"
		}
		p.Tmpls[len(p.Tmpls)-1].Optional = f[1] != "required"
	case "if_id":
		v, ok := hexOrDec(f, 1)
		if !ok {
			return "bad if_id"
		}
		p.IfID = v
	case "enc-mask", "lifetime", "limit:", "expire", "add", "security", "hard":
		// -s's algorithm masks, lifetimes; security contexts: not modelled
	default:
		if strings.HasSuffix(f[0], "(bytes),") {
			return "" // -s's current lifetime
		}
		return "unknown policy attribute " + quote(f[0])
	}
	return ""
}

// xfrmPolicyDir reads "dir|socket D [action A] [index N] priority N [ptype
// T] [share S] [flag F…] [(0xBITS)]".
func xfrmPolicyDir(p *topology.XfrmPolicy, f []string) string {
	if len(f) < 2 {
		return "no direction"
	}
	p.Socket = f[0] == "socket"
	if err := p.Dir.UnmarshalText([]byte(f[1])); err != nil {
		return "bad direction " + quote(f[1])
	}
	flags := false
	for i := 2; i < len(f); i++ {
		w := f[i]
		if flags && !strings.HasPrefix(w, "(0x") {
			if !contains(topology.XfrmPolicyFlagNames[:], w) {
				// what iproute2 has no name for it prints in hex
				n, err := strconv.ParseUint(w, 16, 8)
				if err != nil {
					return "unknown policy flag " + quote(w)
				}
				w = fmt.Sprintf("0x%x", n)
			}
			p.Flags = append(p.Flags, w)
			continue
		}
		switch {
		case w == "flag":
			flags = true
			continue
		case strings.HasPrefix(w, "(0x"):
			continue
		case i+1 >= len(f):
			return "no value after " + quote(w)
		}
		v := f[i+1]
		i++
		switch w {
		case "action":
			if err := p.Action.UnmarshalText([]byte(v)); err != nil {
				return "bad action " + quote(v)
			}
		case "index", "priority":
			n, ok := atou(v)
			if !ok || n > 1<<32-1 {
				return "bad " + w + " " + quote(v)
			}
			if w == "index" {
				p.Index = uint32(n)
			} else {
				p.Priority = uint32(n)
			}
		case "ptype":
			p.Type = v
		case "share":
		default:
			return "unknown word " + quote(w)
		}
	}
	return ""
}
