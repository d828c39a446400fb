package nft

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// The set match (ipset): its Info holds the set's index in the namespace's
// ipset, not its name. iptables-save asks the kernel for the name
// (libxt_set.h get_set_byid); Read does the same inside the namespace
// before decoding and hands the names over in Dump.Sets.

// SetNames are the names of the ipsets the rules refer to, by index, as
// looked up in the rules' namespace; Err says why the lookup failed.
type SetNames struct {
	Names map[uint16]string
	Err   string
}

// name returns the set name for an index, or an error saying why there is
// none.
func (s *SetNames) name(index uint16) (string, error) {
	switch {
	case s == nil:
		return "", fmt.Errorf("ipset index %d: set names were not looked up", index)
	case s.Err != "":
		return "", fmt.Errorf("ipset index %d: %s", index, s.Err)
	}
	n, ok := s.Names[index]
	if !ok || n == "" {
		// iptables-save stops here: "Set with index %i in kernel doesn't exist".
		return "", fmt.Errorf("ipset index %d: the namespace has no set with this index", index)
	}
	return n, nil
}

// setIndexes lists, once each and sorted, the set indexes of the set
// matches in d's rules. Every revision starts with the __u16 index.
func setIndexes(d *Dump) []uint16 {
	if d == nil {
		return nil
	}
	var ids []uint16
	for _, r := range d.Rules {
		for _, e := range r.Exprs {
			if x, ok := e.(*XTMatch); ok && x.Name == "set" && len(x.Info) >= 2 {
				ids = append(ids, ne.Uint16(x.Info))
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// ipset flags (include/uapi/linux/netfilter/ipset/ip_set.h, xt_set.h).
const (
	ipsetDimMax = 6 // IPSET_DIM_MAX

	ipsetSrcV0      = 0x01 // rev 0: IPSET_SRC
	ipsetMatchInvV0 = 0x04 // rev 0: IPSET_MATCH_INV

	ipsetInvMatch      = 1 << 0 // IPSET_INV_MATCH; bit i (1..6): dimension i is src
	ipsetReturnNomatch = 1 << 7 // IPSET_RETURN_NOMATCH (rev 2)

	// struct xt_set_info_match_v3/v4 flags (enum ipset_cmd_flags).
	ipsetFlagSkipCounterUpdate    = 1 << 3
	ipsetFlagSkipSubcounterUpdate = 1 << 4
	ipsetFlagReturnNomatch        = 1 << 7
)

// decodeSet decodes by revision:
//
//	rev 0:    struct xt_set_info_v0 { ip_set_id_t index; __u32 flags[7]; } (32)
//	rev 1, 2: struct xt_set_info { ip_set_id_t index; __u8 dim, flags; }
//	rev 3:    that, then struct ip_set_counter_match0 { __u8 op; __u64 value; }
//	          packets (at 8), bytes (at 24), __u32 flags (at 40)
//	rev 4:    the same with struct ip_set_counter_match { __aligned_u64 value;
//	          __u8 op; }
//
// printed as print_match_v0 / print_match ("[!] --match-set NAME src,dst")
// and set_save_v2/v3/v4 print the flags and counters after it.
func decodeSet(rev uint32, info []byte, sets *SetNames) (topology.Match, error) {
	m := topology.Match{Name: "set"}
	size := map[uint32]int{0: 32, 1: 4, 2: 4, 3: 44, 4: 44}
	n, ok := size[rev]
	if !ok {
		return m, fmt.Errorf("set revision %d is not supported", rev)
	}
	if err := need(info, n, "set"); err != nil {
		return m, err
	}
	var dirs []string
	var inv bool
	if rev == 0 {
		flags := func(i int) uint32 { return ne.Uint32(info[4+4*i:]) }
		inv = flags(0)&ipsetMatchInvV0 != 0
		for i := 0; i < ipsetDimMax && flags(i) != 0; i++ {
			dirs = append(dirs, srcDst(flags(i)&ipsetSrcV0 != 0))
		}
	} else {
		dim, flags := int(info[2]), info[3]
		if dim > ipsetDimMax {
			return m, fmt.Errorf("set of %d dimensions (at most %d)", dim, ipsetDimMax)
		}
		inv = flags&ipsetInvMatch != 0
		for i := 1; i <= dim; i++ {
			dirs = append(dirs, srcDst(flags&(1<<i) != 0))
		}
	}
	name, err := sets.name(ne.Uint16(info))
	if err != nil {
		return m, err
	}
	// print_match: " --match-set NAME" and the directions only when there
	// are any.
	args := []string{name}
	if len(dirs) > 0 {
		args = append(args, strings.Join(dirs, ","))
	}
	m.Opts = []opt{{Name: "match-set", Neg: inv, Args: args}}
	switch rev {
	case 2:
		if info[3]&ipsetReturnNomatch != 0 {
			m.Opts = append(m.Opts, opt{Name: "return-nomatch"})
		}
	case 3, 4:
		flags := ne.Uint32(info[40:])
		if flags&ipsetFlagReturnNomatch != 0 {
			m.Opts = append(m.Opts, opt{Name: "return-nomatch"})
		}
		if flags&ipsetFlagSkipCounterUpdate != 0 {
			m.Opts = append(m.Opts, opt{Name: "update-counters", Neg: true})
		}
		if flags&ipsetFlagSkipSubcounterUpdate != 0 {
			m.Opts = append(m.Opts, opt{Name: "update-subcounters", Neg: true})
		}
		for i, what := range []string{"packets", "bytes"} {
			c := info[8+16*i:]
			op, value := c[0], ne.Uint64(c[8:])
			if rev == 4 {
				op, value = c[8], ne.Uint64(c)
			}
			if o, ok := setCounterOpt(what, op, value); ok {
				m.Opts = append(m.Opts, o)
			}
		}
	}
	return m, nil
}

func srcDst(src bool) string {
	if src {
		return "src"
	}
	return "dst"
}

// setCounterOpt is set_printv3_counter / set_printv4_counter: op
// IPSET_COUNTER_EQ 1, NE 2 ("! --X-eq"), LT 3, GT 4; none prints nothing.
func setCounterOpt(what string, op uint8, value uint64) (opt, bool) {
	v := []string{strconv.FormatUint(value, 10)}
	switch op {
	case 1:
		return opt{Name: what + "-eq", Args: v}, true
	case 2:
		return opt{Name: what + "-eq", Neg: true, Args: v}, true
	case 3:
		return opt{Name: what + "-lt", Args: v}, true
	case 4:
		return opt{Name: what + "-gt", Args: v}, true
	}
	return opt{}, false
}
