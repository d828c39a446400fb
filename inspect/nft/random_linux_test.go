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
	// The bpf, policy, u32 and set matches join the grammar where the
	// kernel has them.
	xt := map[string]bool{}
	for _, k := range xtExtKinds {
		if m := missingKernelSupport(t, k); len(m) > 0 {
			t.Logf("no -m %s in the random rules: kernel support missing: %s", k, m[0])
			continue
		}
		xt[k] = true
	}
	sets := []string{"mt-hosts", "mt-nets", "mt-svc"}
	used := map[string]int{}
	total := 0
	for round := 0; round < rounds; round++ {
		s := seed + uint64(round)
		t.Logf("round %d: NFT_SEED=%d", round, s)
		g := &ruleGen{r: rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)), xt: xt}
		name, path := newNetns(t)
		if xt["set"] {
			for i, typ := range []string{"hash:ip", "hash:net", "hash:ip,port"} {
				nsRun(t, name, "", "ipset", "create", sets[i], typ)
			}
			g.sets = sets
		}
		rules := g.ruleset(200)
		nsRun(t, name, rules, "iptables-restore")
		fw, save := readStable(t, name, path)
		if len(fw.Unparsed) > 0 {
			t.Errorf("NFT_SEED=%d: unparsed %+v", s, fw.Unparsed)
		}
		total += compareWithSave(t, fw, parseSave(t, save))
		for _, tb := range fw.Tables {
			for _, ch := range tb.Chains {
				for _, r := range ch.Rules {
					for _, m := range r.Matches {
						if xt[m.Name] {
							used[m.Name]++
						}
					}
				}
			}
		}
		compareParsed(t, fw, save)
		if t.Failed() {
			t.Fatalf("NFT_SEED=%d failed; ruleset:\n%s", s, rules)
		}
	}
	t.Logf("%d random rules compared; of the kernel-dependent matches: %v", total, used)
	for k := range xt {
		if used[k] == 0 {
			t.Errorf("no rule used -m %s", k)
		}
	}
	if total < 150*rounds {
		t.Errorf("only %d rules compared", total)
	}
}
