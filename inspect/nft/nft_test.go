package nft

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
)

// TestDecodeLayout: tables in iptables-nft-save order, built-in chains
// first (missing ones shown as ACCEPT [0:0]), user chains sorted by name,
// rules in kernel order, foreign tables and odd base chains reported.
func TestDecodeLayout(t *testing.T) {
	d := &Dump{
		Tables: []string{"nat", "filter", "docker-bridges", "raw"},
		Chains: []RawChain{
			{Table: "filter", Name: "ZED"},
			{Table: "filter", Name: "FORWARD", Base: true, Hook: 2, Policy: 0, Packets: 5, Bytes: 300},
			{Table: "filter", Name: "ABC"},
			{Table: "nat", Name: "POSTROUTING", Base: true, Hook: 4, Policy: 1, Packets: 1, Bytes: 60},
			{Table: "nat", Name: "sneaky", Base: true, Hook: 1, Policy: 1},
			{Table: "docker-bridges", Name: "filter-FORWARD", Base: true, Hook: 2, Policy: 1},
		},
		Rules: []RawRule{
			{Table: "filter", Chain: "ZED", Handle: 7, Exprs: []any{counter, &expr.Verdict{Kind: expr.VerdictReturn}}},
			{Table: "filter", Chain: "FORWARD", Handle: 5, Exprs: []any{counter, &expr.Verdict{Kind: expr.VerdictJump, Chain: "ZED"}}},
			{Table: "filter", Chain: "FORWARD", Handle: 6, Exprs: []any{&UnknownExpr{Name: "lookup"}, counter, accept}},
			{Table: "nat", Chain: "POSTROUTING", Handle: 3, Exprs: []any{counter, &XTTarget{Name: "MASQUERADE", Info: natInfo0(0, "", "", 0, 0)}}},
			{Table: "docker-bridges", Chain: "filter-FORWARD", Handle: 2, Exprs: []any{counter, accept}},
			{Table: "filter", Chain: "GONE", Handle: 9, Exprs: []any{counter, accept}},
		},
		Legacy: []string{"filter"},
	}
	fw := Decode(d)
	if fw.Backend != "nf_tables" {
		t.Errorf("backend %q", fw.Backend)
	}
	var layout []string
	for _, tb := range fw.Tables {
		for _, c := range tb.Chains {
			layout = append(layout, tb.Name+"/"+c.Name+" "+c.Policy)
			for _, r := range c.Rules {
				layout = append(layout, "  "+r.Text)
			}
		}
	}
	want := []string{
		"raw/PREROUTING ACCEPT", "raw/OUTPUT ACCEPT",
		"filter/INPUT ACCEPT", "filter/FORWARD DROP",
		"  -A FORWARD -j ZED", "  -A FORWARD -m nft --nft-undecoded lookup -j ACCEPT",
		"filter/OUTPUT ACCEPT", "filter/ABC -", "filter/ZED -", "  -A ZED -j RETURN",
		"nat/PREROUTING ACCEPT", "nat/INPUT ACCEPT", "nat/OUTPUT ACCEPT", "nat/POSTROUTING ACCEPT",
		"  -A POSTROUTING -j MASQUERADE", "nat/sneaky ACCEPT",
	}
	if !reflect.DeepEqual(layout, want) {
		t.Errorf("layout\n got  %q\n want %q", layout, want)
	}
	fwd := fw.Table("filter").Chain("FORWARD")
	if fwd.Packets != 5 || fwd.Bytes != 300 || fw.Table("nat").Chain("POSTROUTING").Packets != 1 {
		t.Errorf("policy counters lost")
	}
	if c := fw.Table("filter").Chain("INPUT"); c.Packets != 0 || len(c.Rules) != 0 {
		t.Errorf("absent built-in chain %+v", c)
	}
	reasons := make([]string, len(fw.Unparsed))
	for i, u := range fw.Unparsed {
		reasons[i] = u.Reason
	}
	all := strings.Join(reasons, "\n")
	for _, w := range []string{
		"table ip docker-bridges is not an iptables table",
		"table filter chain FORWARD rule 2 (handle 6): unsupported expression lookup",
		"table nat: base chain sneaky (hook 1) is not an iptables built-in chain",
		"iptables-legacy tables are also present",
		"table filter: rule 1 (handle 9) of chain GONE, which the chain dump did not list",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("unparsed lacks %q:\n%s", w, all)
		}
	}
	if len(fw.Unparsed) != 5 {
		t.Errorf("%d unparsed entries, want 5", len(fw.Unparsed))
	}
	for _, u := range fw.Unparsed {
		if strings.Contains(u.Reason, "lookup") && (u.Line != 2 || u.Text != fwd.Rules[1].Text) {
			t.Errorf("unparsed rule entry %+v", u)
		}
	}
}

func TestDecodeEmpty(t *testing.T) {
	fw := Decode(&Dump{})
	if len(fw.Tables) != 0 || len(fw.Unparsed) != 0 || fw.Backend != "nf_tables" {
		t.Errorf("%+v", fw)
	}
	// A table with no chains is still printed with its built-in chains.
	fw = Decode(&Dump{Tables: []string{"mangle"}})
	if len(fw.Tables) != 1 || len(fw.Tables[0].Chains) != 5 {
		t.Errorf("%+v", fw.Tables)
	}
}

// fakeSource is a map-backed source.
type fakeSource struct {
	dumps     map[string]*Dump
	legacy    map[string][]string
	dumpErr   error
	legacyErr error
	sets      map[uint16]string
	setErr    error
	setCalls  [][]uint16
}

var _ source = (*fakeSource)(nil)

func (f *fakeSource) dump(ns string) (*Dump, error) {
	if f.dumpErr != nil {
		return nil, f.dumpErr
	}
	return f.dumps[ns], nil
}

func (f *fakeSource) legacyTables(ns string) ([]string, error) {
	return f.legacy[ns], f.legacyErr
}

func (f *fakeSource) setNames(ns string, ids []uint16) (map[uint16]string, error) {
	f.setCalls = append(f.setCalls, ids)
	if f.setErr != nil {
		return nil, f.setErr
	}
	return f.sets, nil
}

func TestReadLogic(t *testing.T) {
	nftDump := &Dump{Tables: []string{"filter"}}
	src := &fakeSource{
		dumps: map[string]*Dump{
			"/run/netns/nft": nftDump, "/run/netns/legacy": {}, "/run/netns/both": {Tables: []string{"nat"}},
			"/run/netns/empty": {}, "/run/netns/native": {Tables: []string{"mine"}},
		},
		legacy: map[string][]string{"/run/netns/legacy": {"filter", "nat"}, "/run/netns/both": {"filter"},
			"/run/netns/native": {"raw"}},
	}
	fw, err := read(src, "/run/netns/nft")
	if err != nil || len(fw.Tables) != 1 || len(fw.Unparsed) != 0 {
		t.Errorf("nft: %+v %v", fw, err)
	}
	_, err = read(src, "/run/netns/legacy")
	var le *LegacyError
	if !errors.Is(err, ErrLegacy) || !errors.As(err, &le) || le.NetNS != "/run/netns/legacy" ||
		!strings.Contains(err.Error(), "/run/netns/legacy") || !strings.Contains(err.Error(), "filter,nat") {
		t.Errorf("legacy: %v", err)
	}
	// Only native nftables tables plus legacy ones: the iptables rules are
	// the legacy ones.
	if _, err = read(src, "/run/netns/native"); !errors.Is(err, ErrLegacy) {
		t.Errorf("native+legacy: %v", err)
	}
	fw, err = read(src, "/run/netns/both")
	if err != nil || len(fw.Unparsed) != 1 || !strings.Contains(fw.Unparsed[0].Text, "filter") {
		t.Errorf("both: %+v %v", fw, err)
	}
	fw, err = read(src, "/run/netns/empty")
	if err != nil || len(fw.Tables) != 0 {
		t.Errorf("empty: %+v %v", fw, err)
	}

	src.legacyErr = errors.New("permission denied")
	fw, err = read(src, "/run/netns/nft")
	if err != nil || len(fw.Unparsed) != 1 || !strings.Contains(fw.Unparsed[0].Reason, "permission denied") {
		t.Errorf("legacy check failing next to nft tables: %+v %v", fw, err)
	}
	if _, err = read(src, "/run/netns/empty"); err == nil {
		t.Errorf("legacy check failing in an empty netns must be an error")
	}
	src.dumpErr = errors.New("netlink: boom")
	if _, err = read(src, "/run/netns/nft"); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("dump error: %v", err)
	}
}

func TestLegacyErrorCurrentNetns(t *testing.T) {
	err := &LegacyError{Tables: []string{"nat"}}
	if !strings.Contains(err.Error(), "current netns") {
		t.Error(err)
	}
}
