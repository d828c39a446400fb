package nft

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Kernel support for the xtables extensions some tests load: a kernel may
// be built without xt_bpf, xt_policy, xt_u32 or ip_set/xt_set. Only the
// (sub)tests that need a missing one are skipped, naming it.

// xtProbe is a rule that loads only when the kernel has the extension.
type xtProbe struct {
	kernel string     // what the kernel lacks when the probe fails
	setup  [][]string // commands run before the rule (in the probe netns)
	rule   []string   // iptables-nft arguments after "-A INPUT"
}

var xtProbes = map[string]xtProbe{
	"bpf":    {kernel: "xt_bpf (CONFIG_NETFILTER_XT_MATCH_BPF)", rule: []string{"-m", "bpf", "--bytecode", "1,6 0 0 0"}},
	"policy": {kernel: "xt_policy (CONFIG_NETFILTER_XT_MATCH_POLICY)", rule: []string{"-m", "policy", "--dir", "in", "--pol", "none"}},
	"u32":    {kernel: "xt_u32 (CONFIG_NETFILTER_XT_MATCH_U32)", rule: []string{"-m", "u32", "--u32", "0=0"}},
	"set": {kernel: "ip_set and xt_set (CONFIG_IP_SET, CONFIG_NETFILTER_XT_SET)",
		setup: [][]string{{"ipset", "create", "probe", "hash:ip"}},
		rule:  []string{"-m", "set", "--match-set", "probe", "src"}},
}

var (
	probeMu  sync.Mutex
	probeMsg = map[string]string{} // "" = supported
)

// missingKernelSupport reports, for each of the features that this kernel
// cannot load, why; it probes each feature once per test process in a
// throwaway namespace. A probe that fails for any other reason than
// missing kernel support fails the test.
func missingKernelSupport(t testing.TB, features ...string) []string {
	t.Helper()
	var missing []string
	for _, f := range features {
		probeMu.Lock()
		msg, done := probeMsg[f]
		probeMu.Unlock()
		if !done {
			msg = probe(t, f)
			probeMu.Lock()
			probeMsg[f] = msg
			probeMu.Unlock()
		}
		if msg != "" {
			missing = append(missing, msg)
		}
	}
	return missing
}

// needXT skips t unless the kernel supports every feature.
func needXT(t testing.TB, features ...string) {
	t.Helper()
	if m := missingKernelSupport(t, features...); len(m) > 0 {
		t.Skip("kernel support missing: " + strings.Join(m, "; "))
	}
}

// needIpset fails (in CI, where scripts/setup installs it) or skips when
// the ipset tool is not installed.
func needIpset(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ipset"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ipset is not installed (scripts/setup installs it): %v", err)
		}
		t.Skip("ipset is not installed")
	}
}

func probe(t testing.TB, feature string) string {
	t.Helper()
	p, ok := xtProbes[feature]
	if !ok {
		t.Fatalf("no probe for %q", feature)
	}
	if feature == "set" {
		needIpset(t)
	}
	name, _ := newNetns(t)
	run := func(args ...string) (string, bool) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", name}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err == nil
	}
	for _, s := range p.setup {
		if out, ok := run(s...); !ok {
			return kernelLacks(t, p, strings.Join(s, " "), out)
		}
	}
	if out, ok := run(append([]string{"iptables-nft", "-A", "INPUT"}, p.rule...)...); !ok {
		return kernelLacks(t, p, "iptables-nft -A INPUT "+strings.Join(p.rule, " "), out)
	}
	return ""
}

// kernelLacks turns a failed probe into the skip message when the error
// is the kernel's "not there" (nft_compat: ENOENT for an unknown match;
// ipset: protocol not supported), and fails the test otherwise.
func kernelLacks(t testing.TB, p xtProbe, cmd, out string) string {
	t.Helper()
	// iptables' own extension library is missing: not the kernel. (A
	// match the kernel lacks gets to the kernel as revision 0, which
	// iptables-nft takes as compatible, and fails there with ENOENT.)
	if strings.Contains(out, "Couldn't load") {
		t.Fatalf("probe %q: iptables lacks the extension: %s", cmd, out)
	}
	for _, s := range []string{"No such file or directory", "Protocol not supported", "not loaded",
		"Address family not supported", "Cannot open session to kernel"} {
		if strings.Contains(out, s) {
			return p.kernel + " (" + cmd + ": " + strings.ReplaceAll(out, "\n", " / ") + ")"
		}
	}
	t.Fatalf("probe %q failed for a reason other than missing kernel support: %s", cmd, out)
	return ""
}
