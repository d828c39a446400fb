package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

// kernelCounters reads a namespace's counters: the /proc/net files from
// inside it (/proc/thread-self/net is the namespace of the thread
// Target.inside entered), the links' statistics (IFLA_STATS64) with a
// link dump on the target's rtnetlink socket.
type kernelCounters struct{}

var _ CountersReader = kernelCounters{}

func newCountersReader() CountersReader { return kernelCounters{} }

// procCounters are the /proc/net files read, by what they hold.
var procCounters = []struct{ name, path string }{
	{"snmp", "/proc/thread-self/net/snmp"},
	{"netstat", "/proc/thread-self/net/netstat"},
	{"nf_conntrack", "/proc/thread-self/net/stat/nf_conntrack"},
}

func (kernelCounters) ReadCounters(t *Target) (*topology.Counters, error) {
	c := &topology.Counters{}
	var errs []error
	data := make([][]byte, len(procCounters))
	err := t.inside(func() error {
		for i, p := range procCounters {
			b, err := os.ReadFile(p.path)
			switch {
			case errors.Is(err, fs.ErrNotExist) && p.name == "nf_conntrack":
				// nf_conntrack makes it in every namespace once loaded
				// (nf_conntrack_standalone.c): without it nothing is
				// tracked, and no conntrack counter can move.
				c.Notes = append(c.Notes, "conntrack counters: /proc/net/stat/nf_conntrack does not exist (nf_conntrack is not loaded)")
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", p.path, err))
			default:
				data[i] = b
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	file := func(p string) string { return fmt.Sprintf("netns %s: %s", t.Name, p) }
	for i, p := range procCounters {
		if data[i] == nil {
			continue
		}
		var bad []topology.Unparsed
		var err error
		if p.name == "nf_conntrack" {
			c.Conntrack, bad, err = parse.ConntrackStat(file(p.path), bytes.NewReader(data[i]))
		} else {
			var v map[string]int64
			if v, bad, err = parse.SNMP(file(p.path), bytes.NewReader(data[i])); err == nil {
				if c.SNMP == nil {
					c.SNMP = map[string]int64{}
				}
				for k, n := range v {
					c.SNMP[k] = n
				}
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
		for _, u := range bad {
			errs = append(errs, fmt.Errorf("%s: line %d not understood (%s): %q", u.File, u.Line, u.Reason, u.Text))
		}
	}
	if t.res.err != nil {
		errs = append(errs, t.res.err)
	} else if links, err := linkStats(t.res.route); err != nil {
		errs = append(errs, fmt.Errorf("link statistics: %w", err))
	} else {
		c.Links = links
	}
	return c, errors.Join(errs...)
}

// linkStats dumps every link's statistics over the rtnetlink socket fd, as
// `ip -s -s link` shows them: every counter of struct rtnl_link_stats64 but
// the four it prints only when not 0 (rx_compressed, tx_compressed,
// rx_nohandler, rx_otherhost_dropped), and carrier_changes where the kernel
// gives it (IFLA_CARRIER_CHANGES).
func linkStats(fd int) (map[string]topology.LinkCounters, error) {
	out := map[string]topology.LinkCounters{}
	var derr error
	_, err := retry(func() (struct{}, error) {
		clear(out)
		derr = nil
		return struct{}{}, nlDump(fd, unix.RTM_GETLINK, make([]byte, unix.SizeofIfInfomsg), func(typ uint16, data []byte) {
			if typ != unix.RTM_NEWLINK || derr != nil {
				return
			}
			name, lc, err := decodeLinkStats(data)
			if err != nil {
				derr = err
				return
			}
			if lc != nil {
				out[name] = lc
			}
		})
	})
	if err = errors.Join(err, derr); err != nil {
		return nil, err
	}
	return out, nil
}

// onlyWhenSet are the counters iproute2 prints only when they are not 0
// (ipaddress.c, print_stats64).
var onlyWhenSet = map[string]bool{"rx_compressed": true, "tx_compressed": true, "rx_nohandler": true, "rx_otherhost_dropped": true}

// decodeLinkStats reads an RTM_NEWLINK payload's name and statistics; nil
// counters for a link without IFLA_STATS64.
func decodeLinkStats(data []byte) (string, topology.LinkCounters, error) {
	if len(data) < unix.SizeofIfInfomsg {
		return "", nil, fmt.Errorf("link message: %d bytes", len(data))
	}
	attrs, err := rtAttrs(data[unix.SizeofIfInfomsg:])
	if err != nil {
		return "", nil, fmt.Errorf("link message: %w", err)
	}
	name := string(bytes.TrimRight(attrs[unix.IFLA_IFNAME], "\x00"))
	stats := attrs[unix.IFLA_STATS64]
	carrier, haveCarrier := uint32(0), false
	if v := attrs[unix.IFLA_CARRIER_CHANGES]; len(v) >= 4 {
		carrier, haveCarrier = binary.NativeEndian.Uint32(v), true
	}
	if stats == nil || name == "" {
		return name, nil, nil
	}
	lc := topology.LinkCounters{}
	for i, n := range topology.LinkStatNames {
		if 8*(i+1) > len(stats) {
			break // an older kernel's shorter struct
		}
		v := binary.NativeEndian.Uint64(stats[8*i:])
		if v != 0 || !onlyWhenSet[n] {
			lc[n] = v
		}
	}
	if haveCarrier {
		lc["carrier_changes"] = uint64(carrier)
	}
	return name, lc, nil
}
