package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestFlagRanges: negative or absurd values are refused before anything
// runs, the message naming the flag and the range it allows. (--from a
// missing bundle makes a command that got past its flags fail at once,
// with another message.)
func TestFlagRanges(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-bundle")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trace", "--port", "8080", "--timeout", "-1s"}, `"--timeout" flag: must be 100ms-24h0m0s`},
		{[]string{"trace", "--port", "8080", "--timeout", "0s"}, `"--timeout" flag: must be 100ms-24h0m0s`},
		{[]string{"trace", "--port", "8080", "--timeout", "100000h"}, `"--timeout" flag: must be 100ms-24h0m0s`},
		{[]string{"trace", "--port", "8080", "--ring-kb", "99999999"}, `"--ring-kb" flag: must be 0 (the default) or 128-131072`},
		{[]string{"trace", "--port", "8080", "--ring-kb", "-1"}, `"--ring-kb" flag: must be 0 (the default) or 128-131072`},
		{[]string{"trace", "--port", "8080", "--count", "-1"}, `"--count" flag: must be 0-100000`},
		{[]string{"trace", "--port", "-8080"}, `"--port" flag: must be 0 (the default) or 1-65535`},
		{[]string{"trace", "--port", "65536"}, `"--port" flag: must be 0 (the default) or 1-65535`},
		{[]string{"path", "--port", "99999"}, `"--port" flag: must be 0 (the default) or 1-65535`},
		{[]string{"replay", "--port", "-1", "x.pcap"}, `"--port" flag: must be 0 (the default) or 1-65535`},
		{[]string{"doctor", "--port", "70000"}, `"--port" flag: must be 0 (the default) or 1-65535`},
		{[]string{"doctor", "--probe-timeout", "-1s"}, `"--probe-timeout" flag: must be 100ms-5m0s`},
		{[]string{"doctor", "--keepalive", "-5m"}, `"--keepalive" flag: must be 0s (the default) or 1s-720h0m0s`},
		{[]string{"tui", "--interval", "-1s"}, `"--interval" flag: must be 0 (never) or 1s-24h0m0s`},
		{[]string{"tui", "--probe-count", "0"}, `"--probe-count" flag: must be 1-1000`},
		{[]string{"mesh", "up", "--nodes", "-3"}, `"--nodes" flag: must be 1-`},
		{[]string{"trace", "--port", "8080", "--count", "two"}, `"--count" flag: not a number`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, code := run(t, append(tc.args, "--from", missing)...)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, output %q; want it refused saying %q", code, out, tc.want)
			}
		})
	}
	// Values inside the ranges pass the flags (and fail later, on the
	// missing bundle or the missing capture).
	for _, args := range [][]string{
		{"doctor", "--probe-timeout", "2s", "--keepalive", "20m", "--port", "8080"},
		{"path", "--port", "8080"},
	} {
		if out, _ := run(t, append(args, "--from", missing)...); !strings.Contains(out, missing) {
			t.Errorf("%q: %q, want the missing bundle named", args, out)
		}
	}
}

// TestTracePcapRefusesExisting: trace --pcap never overwrites a file or
// writes through a link; it says so before capturing anything.
func TestTracePcapRefusesExisting(t *testing.T) {
	dir, v := testutil.NewVictims(t)
	victim := v.File
	link := filepath.Join(dir, "out.pcapng")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{victim, link} {
		out, code := run(t, "trace", "--port", "8080", "--mesh", "no-such-mesh", "--pcap", p)
		if code == 0 || !strings.Contains(out, p) || !strings.Contains(out, "refusing to overwrite") {
			t.Errorf("--pcap %s: exit %d, %q; want it refused", p, code, out)
		}
	}
	v.Untouched(t)
}
