package inspect

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"path"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/topology"
)

// The bundle files of a namespace's counters (see readBundleCounters).
const (
	BundleSNMP          = "snmp.txt"
	BundleNetstat       = "netstat.txt"
	BundleConntrackStat = "nf_conntrack-stat.txt"
	BundleLinkStats     = "ip-stats.txt"
	BundleIPVSStats     = "ipvsadm-stats.txt"
)

// CountersReader reads a namespace's topology.Counters: /proc/net/snmp and
// /proc/net/netstat, /proc/net/stat/nf_conntrack and the links'
// statistics. Reading them loads no module and changes nothing: the
// counters of a namespace are files of its /proc/net and attributes of its
// link dump.
type CountersReader interface {
	ReadCounters(t *Target) (*topology.Counters, error)
}

// What collect runs for the counters: the files as they are (cat inside
// the namespace reads the namespace's /proc/net), the links' statistics
// with the error counters (-s -s), and, with IPVS, every service's and
// destination's counters unrounded (--exact).
var (
	cmdSNMP          = collectCmd{file: BundleSNMP, name: "cat", args: []string{"/proc/net/snmp"}}
	cmdNetstat       = collectCmd{file: BundleNetstat, name: "cat", args: []string{"/proc/net/netstat"}}
	cmdConntrackStat = collectCmd{file: BundleConntrackStat, name: "cat", args: []string{"/proc/net/stat/nf_conntrack"}}
	cmdLinkStats     = collectCmd{file: BundleLinkStats, name: "ip", args: []string{"-s", "-s", "link", "show"}}
	cmdIPVSStats     = collectCmd{file: BundleIPVSStats, name: "ipvsadm", args: []string{"-L", "-n", "--stats", "--exact"}}
)

// readBundleCounters reads a namespace folder's counter files into
// ns.Counters (snmp.txt and netstat.txt, `cat /proc/net/snmp`, `cat
// /proc/net/netstat`, or `nstat -az`; nf_conntrack-stat.txt, `cat
// /proc/net/stat/nf_conntrack` or `conntrack -S`; ip-stats.txt, `ip -s
// [-s] link`), leaving it nil when none is there, and ipvsadm-stats.txt
// (`ipvsadm -Ln --stats [--exact]`) into the counters of the IPVS table
// read from ipvsadm.txt. Lines not understood are errors of the
// namespace, naming file and line.
func readBundleCounters(b *safefile.Dir, dir string, ns *topology.Namespace) error {
	c := &topology.Counters{}
	read := false
	for _, name := range []string{BundleSNMP, BundleNetstat} {
		err := readLines(b, dir, name, ns, parse.SNMP, func(v map[string]int64) {
			if c.SNMP == nil {
				c.SNMP = map[string]int64{}
			}
			maps.Copy(c.SNMP, v)
			read = true
		})
		if err != nil {
			return err
		}
	}
	err := readLines(b, dir, BundleConntrackStat, ns, parse.ConntrackStat, func(v map[string]uint64) { c.Conntrack, read = v, true })
	if err != nil {
		return err
	}
	err = readLines(b, dir, BundleLinkStats, ns, parse.IPLinkStats, func(v map[string]topology.LinkCounters) { c.Links, read = v, true })
	if err != nil {
		return err
	}
	if read {
		ns.Counters = c
	}
	_, err = parseFile(b, path.Join(dir, BundleIPVSStats), func(file string, r io.Reader) error {
		stats, err := parse.Ipvsadm(file, r)
		if err != nil {
			return err
		}
		if ns.IPVS == nil || !ns.IPVS.Available {
			ns.Errors = append(ns.Errors, fmt.Sprintf("%s: IPVS counters without an IPVS table (%s): not kept", file, BundleIPVS))
			return nil
		}
		ns.Errors = append(ns.Errors, mergeIPVSStats(file, ns.IPVS, stats)...)
		return nil
	})
	return err
}

// ipvsKey identifies a service as ipvsadm does: its fwmark, or its
// protocol, address and port.
type ipvsKey struct {
	fwmark uint32
	proto  string
	addr   netip.AddrPort
}

func keyOf(s *topology.IPVSService) ipvsKey {
	if s.FWMark != 0 {
		return ipvsKey{fwmark: s.FWMark}
	}
	return ipvsKey{proto: s.Proto, addr: netip.AddrPortFrom(s.Addr, uint16(s.Port))}
}

// mergeIPVSStats copies the counters of stats (a listing with --stats) to
// the same services and destinations of table; what the listing has and
// the table has not is returned as errors of the namespace (the two files
// were not written at the same moment).
func mergeIPVSStats(file string, table, stats *topology.IPVS) []string {
	var errs []string
	svcs := map[ipvsKey]*topology.IPVSService{}
	for _, s := range table.Services {
		svcs[keyOf(s)] = s
	}
	for _, s := range stats.Services {
		t := svcs[keyOf(s)]
		if t == nil {
			errs = append(errs, fmt.Sprintf("%s: counters of a service not in %s: %+v: not kept", file, BundleIPVS, keyOf(s)))
			continue
		}
		t.Stats = s.Stats
		dests := map[netip.AddrPort]*topology.IPVSDest{}
		for _, d := range t.Dests {
			dests[netip.AddrPortFrom(d.Addr, uint16(d.Port))] = d
		}
		for _, d := range s.Dests {
			ap := netip.AddrPortFrom(d.Addr, uint16(d.Port))
			if td := dests[ap]; td != nil {
				td.Stats = d.Stats
			} else {
				errs = append(errs, fmt.Sprintf("%s: counters of destination %s not in %s: not kept", file, ap, BundleIPVS))
			}
		}
	}
	return errs
}
