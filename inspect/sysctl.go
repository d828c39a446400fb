package inspect

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

// The sysctls meshtrace reads, in one place for the live reader (which
// opens the files under /proc/sys/net, and takes the per-link knobs from
// the link dump), collect (which asks `sysctl` for the same names) and the
// bundle reader (which keeps the same keys).

// sysctlDirs are the directories read, each with its files (relative
// paths), keyed by sysctl name prefix. IPVS and conntrack knobs exist only
// when those modules are loaded, bridge-nf-call-iptables only with
// br_netfilter: missing files are skipped.
var sysctlDirs = []struct {
	dir, prefix string
	files       []string
}{
	{"ipv4", "net.ipv4.", []string{"ip_forward", "conf/all/rp_filter", "conf/all/route_localnet"}},
	{"ipv4/vs", "net.ipv4.vs.", []string{"conntrack", "expire_nodest_conn", "conn_reuse_mode"}},
	{"netfilter", "net.netfilter.", []string{"nf_conntrack_count", "nf_conntrack_max"}},
	{"bridge", "net.bridge.", []string{"bridge-nf-call-iptables"}},
}

// devconfKnobs are the per-link sysctls net.ipv4.conf.LINK.NAME, which the
// live reader takes from the link dump's IPv4 devconf array
// (IFLA_INET_CONF; index = IPV4_DEVCONF_* - 1).
var devconfKnobs = []struct {
	name  string
	index int
}{{"rp_filter", 8 - 1}, {"route_localnet", 26 - 1}}

const confPrefix = "net.ipv4.conf."

// conntrackHint is what sysctls s say of the conntrack table's size: its
// nf_conntrack_count, 0 when nf_conntrack is not loaded (see
// noConntrackModule), -1 when they do not say.
func conntrackHint(s topology.Sysctls) int {
	if n, err := strconv.Atoi(s["net.netfilter.nf_conntrack_count"]); err == nil {
		return n
	}
	if noConntrackModule(s) {
		return 0
	}
	return -1
}

// noConntrackModule: the sysctls were read (ip_forward is always there) and
// have no nf_conntrack_count, so nf_conntrack is not loaded and the table is
// empty. Nothing may ask ctnetlink then: nfnetlink would load
// nf_conntrack_netlink, and nf_conntrack with it, changing the host.
func noConntrackModule(s topology.Sysctls) bool {
	_, fwd := s["net.ipv4.ip_forward"]
	_, count := s["net.netfilter.nf_conntrack_count"]
	return fwd && !count
}

// sysctlKeys are the names of sysctlDirs' files.
func sysctlKeys() []string {
	var out []string
	for _, d := range sysctlDirs {
		for _, f := range d.files {
			out = append(out, d.prefix+strings.ReplaceAll(f, "/", "."))
		}
	}
	return out
}

var sysctlKeySet = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range sysctlKeys() {
		m[k] = true
	}
	return m
}()

// modelledSysctl reports whether the live reader reads key: one of
// sysctlKeys, or a devconf knob of a link (net.ipv4.conf.LINK.rp_filter;
// "all" is in sysctlKeys, "default" is no link).
func modelledSysctl(key string) bool {
	if sysctlKeySet[key] {
		return true
	}
	rest, ok := strings.CutPrefix(key, confPrefix)
	if !ok {
		return false
	}
	for _, k := range devconfKnobs {
		if link, ok := strings.CutSuffix(rest, "."+k.name); ok && link != "" && link != "default" {
			return true
		}
	}
	return false
}

// sysctlArgsFrom are the arguments of the `sysctl` collect runs in a
// namespace whose `ip -d addr` it has (prev[BundleIPAddr]): -e (a key the
// kernel lacks, IPVS's without IPVS, is no error), sysctlKeys and each
// link's devconf knobs, net.ipv4.conf.LINK.rp_filter, with a dot in the
// link's name written as sysctl wants it, a slash. nil (sysctlArgs then)
// when ip -d addr was not collected or does not parse.
func sysctlArgsFrom(prev map[string][]byte) []string {
	b, ok := prev[BundleIPAddr]
	if !ok {
		return nil
	}
	links, err := parse.IPAddr(BundleIPAddr, bytes.NewReader(b))
	if err != nil {
		return nil
	}
	args := append([]string{"-e"}, sysctlKeys()...)
	for _, l := range links {
		if l.Name == "all" || l.Name == "default" || strings.Contains(l.Name, "=") {
			// "=" would make the argument an assignment (Linux allows it
			// in a link name): such a link's knobs are not collected.
			continue
		}
		for _, k := range devconfKnobs {
			args = append(args, confPrefix+strings.ReplaceAll(l.Name, ".", "/")+"."+k.name)
		}
	}
	return args
}

// sysctlArgs are the arguments of the `sysctl` collect runs without the
// links' names: every key of sysctlKeys outside net.ipv4.conf, plus
// net.ipv4.conf itself (sysctl lists a directory), narrowed by -r to the
// keys above and the links' devconf knobs (sysctl prints a dot in a link's
// name as a slash, so a link is one [^.]+). Listing the directory stats
// every knob of every link (30 ms to over 100 ms a namespace): the
// fallback only.
func sysctlArgs() []string {
	var keys, alts []string
	for _, k := range sysctlKeys() {
		alts = append(alts, regexp.QuoteMeta(k))
		if !strings.HasPrefix(k, confPrefix) {
			keys = append(keys, k)
		}
	}
	var knobs []string
	for _, k := range devconfKnobs {
		knobs = append(knobs, regexp.QuoteMeta(k.name))
	}
	alts = append(alts, regexp.QuoteMeta(confPrefix)+`[^.]+\.(`+strings.Join(knobs, "|")+")")
	args := []string{"-e", "-r", "^(" + strings.Join(alts, "|") + ")$"}
	return append(append(args, keys...), strings.TrimSuffix(confPrefix, "."))
}
