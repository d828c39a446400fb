//go:build linux

package nft

import (
	"strings"
	"testing"

	"github.com/google/nftables/expr"
)

// TestReadCompilesRules: the reader types every rule's arguments (the NAT
// range the evaluator follows), and a rule whose arguments do not make
// sense is an error naming the netns, table, chain and rule, never a
// rewrite the evaluator would follow anyway.
func TestReadCompilesRules(t *testing.T) {
	dnat := func(pmin, pmax uint16) RawRule {
		return RawRule{Table: "nat", Chain: "DOCKER-INGRESS", Handle: 7, Exprs: cat(l4tcp, dport(expr.CmpOpEq, 8080), counter,
			&XTTarget{Name: "DNAT", Rev: 2, Info: natInfo2(natMapIPs|natProtoSpecified, "172.18.0.2", "172.18.0.2", pmin, pmax, 0)})}
	}
	dump := func(r RawRule) *Dump {
		return &Dump{Tables: []string{"nat"}, Chains: []RawChain{{Table: "nat", Name: "DOCKER-INGRESS"}}, Rules: []RawRule{r}}
	}
	src := &fakeSource{dumps: map[string]*Dump{"/run/netns/good": dump(dnat(8080, 8080)), "/run/netns/bad": dump(dnat(9000, 8000))}}
	fw, err := read(src, "/run/netns/good")
	if err != nil {
		t.Fatal(err)
	}
	r := fw.Table("nat").Chain("DOCKER-INGRESS").Rules[0]
	if r.NAT == nil || r.NAT.Addr.String() != "172.18.0.2" || r.NAT.Port != 8080 || r.Matches[0].Opts[0].Ports == nil {
		t.Errorf("rule %q not typed: NAT %+v, dport %+v", r.Text, r.NAT, r.Matches[0].Opts[0])
	}
	_, err = read(src, "/run/netns/bad")
	for _, want := range []string{"/run/netns/bad", "table nat chain DOCKER-INGRESS rule 1", `--to-destination "172.18.0.2:9000-8000"`, "reversed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
