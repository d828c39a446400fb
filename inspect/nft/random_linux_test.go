package nft

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestReadRandomRules loads a few hundred random rules and checks that the
// decoded model renders exactly as iptables-save prints it (and matches
// inspect/parse field by field). The seed is logged; NFT_SEED reruns one.
func TestReadRandomRules(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NFT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("NFT_SEED: %v", err)
		}
		seed = v
	}
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	total := 0
	for round := 0; round < rounds; round++ {
		s := seed + uint64(round)
		t.Logf("round %d: NFT_SEED=%d", round, s)
		g := &ruleGen{r: rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))}
		rules := g.ruleset(200)
		name, path := newNetns(t)
		nsRun(t, name, rules, "iptables-restore")
		fw, save := readStable(t, name, path)
		if len(fw.Unparsed) > 0 {
			t.Errorf("NFT_SEED=%d: unparsed %+v", s, fw.Unparsed)
		}
		total += compareWithSave(t, fw, parseSave(t, save))
		compareParsed(t, fw, save)
		if t.Failed() {
			t.Fatalf("NFT_SEED=%d failed; ruleset:\n%s", s, rules)
		}
	}
	t.Logf("%d random rules compared", total)
	if total < 150*rounds {
		t.Errorf("only %d rules compared", total)
	}
}
