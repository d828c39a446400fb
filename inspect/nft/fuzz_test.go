package nft

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParseRule feeds arbitrary NEWRULE payloads (seeded with the recorded
// real ones) through the wire decoder and the rule decoder: errors are
// fine, panics are not, and a decoded rule always renders to its Text.
func FuzzParseRule(f *testing.F) {
	files, _ := filepath.Glob("testdata/wire/*.nlmsg")
	for _, file := range files {
		_, msgs := loadWire(f, file)
		for _, m := range msgs {
			if m[0].(uint16) == unix.NFT_MSG_GETRULE {
				f.Add(m[1].([]byte)[4:])
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRule(b)
		if err != nil {
			return
		}
		rule, _ := DecodeRule(r.Chain, r.Exprs, r.UserData)
		if rule.Text != rule.Render() {
			t.Fatalf("Text %q != Render %q", rule.Text, rule.Render())
		}
	})
}

// FuzzXT feeds arbitrary Info structs to every match and target decoder.
func FuzzXT(f *testing.F) {
	for _, name := range []string{"addrtype", "conntrack", "mark", "ipvs", "statistic", "comment",
		"multiport", "tcp", "udp", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "MARK", "REJECT", "LOG",
		"bpf", "policy", "u32", "set"} {
		for rev := uint32(0); rev < 5; rev++ {
			f.Add(name, rev, make([]byte, 8), true)
			f.Add(name, rev, make([]byte, 168), false)
		}
	}
	f.Add("bpf", uint32(1), bpfInfo1(0, dockerProg, ""), true)
	f.Add("bpf", uint32(0), bpfInfo0(dockerProg), true)
	f.Add("policy", uint32(0), policyInfo(1, policyElem{mode: 1, match: polMode | polSaddr}), true)
	f.Add("u32", uint32(0), u32Info(true, u32Test{loc: [][2]uint32{{0, 0}, {22, 2}}, val: [][2]uint32{{1, 2}}}), true)
	f.Add("set", uint32(4), setInfo34(4, 0, 2, 3, setCounter{1, 5}, setCounter{4, 6}, 0x98), true)
	f.Add("set", uint32(0), setInfo0(0, 1, 2), true)
	f.Fuzz(func(t *testing.T, name string, rev uint32, info []byte, match bool) {
		var e any = &XTTarget{Name: name, Rev: rev, Info: info}
		if match {
			e = &XTMatch{Name: name, Rev: rev, Info: info}
		}
		r, _ := decodeRule("X", []any{e}, nil, &SetNames{Names: map[uint16]string{0: "s"}})
		if r.Text != r.Render() {
			t.Fatalf("Text %q != Render %q", r.Text, r.Render())
		}
	})
}
