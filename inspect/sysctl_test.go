package inspect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestModelledSysctl(t *testing.T) {
	for key, want := range map[string]bool{
		"net.ipv4.ip_forward":                          true,
		"net.ipv4.vs.expire_nodest_conn":               true,
		"net.ipv4.conf.all.rp_filter":                  true,
		"net.ipv4.conf.eth0.5.rp_filter":               true, // a link with a dot in its name
		"net.ipv4.conf.docker_gwbridge.route_localnet": true,
		"net.ipv4.conf.default.rp_filter":              false, // no link
		"net.ipv4.conf.eth0.arp_filter":                false,
		"net.ipv4.conf..rp_filter":                     false,
		"net.ipv4.ip_local_port_range":                 false,
		"net.ipv4.ip_forward.x":                        false,
	} {
		if got := modelledSysctl(key); got != want {
			t.Errorf("modelledSysctl(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestSysctlArgsRecorded: the fixtures were recorded with the arguments
// collect passes to sysctl (record-state.sh spells them out).
func TestSysctlArgsRecorded(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "fixtures", "cmdout", "record-state.sh"))
	if err != nil {
		t.Fatal(err)
	}
	script := strings.Join(strings.Fields(string(b)), " ")
	var knobs []string
	for _, k := range devconfKnobs {
		knobs = append(knobs, k.name)
	}
	dir := sysctlArgs()
	for _, want := range []string{
		`sysctl_keys="` + strings.Join(sysctlKeys(), " ") + `"`,
		`sysctl_knobs="` + strings.Join(knobs, " ") + `"`,
		"sysctl_dir_args=(" + dir[0] + " " + dir[1] + " '" + dir[2] + "' " + strings.Join(dir[3:], " ") + ")",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("record-state.sh does not run sysctl as collect does; want\n%s", want)
		}
	}
}

// TestSysctlArgsFrom: the links' knobs by name, a dot written as sysctl
// wants it; the directory listing when the links are not known.
func TestSysctlArgsFrom(t *testing.T) {
	addr := []byte(cmdoutFile(t, "state-variants/ip-addr.txt"))
	args := sysctlArgsFrom(map[string][]byte{BundleIPAddr: addr})
	if args[0] != "-e" || !slices.Contains(args, "net.ipv4.conf.eth0/5.rp_filter") || !slices.Contains(args, "net.ipv4.conf.lo.route_localnet") ||
		!slices.Contains(args, "net.ipv4.ip_forward") || slices.Contains(args, "net.ipv4.conf") {
		t.Errorf("args %q", args)
	}
	for _, prev := range []map[string][]byte{{}, {BundleIPAddr: []byte("garbage\n")}} {
		if c, _, _ := cmdSysctl.inNetns(prev); !slices.Equal(c.args, sysctlArgs()) {
			t.Errorf("without ip addr: %q", c.args)
		}
	}
}

// TestNoConntrack: conntrack -L runs unless sysctl said the table is empty.
func TestNoConntrack(t *testing.T) {
	for sysctl, skip := range map[string]bool{
		"net.netfilter.nf_conntrack_count = 0\n": true,
		"net.netfilter.nf_conntrack_count = 3\n": false,
		"net.ipv4.ip_forward = 1\n":              true, // no conntrack module: asking would load it
		"":                                       false,
	} {
		prev := map[string][]byte{}
		if sysctl != "" {
			prev[BundleSysctl] = []byte(sysctl)
		}
		if _, out, known := cmdConntrack.inNetns(prev); known != skip || (known && len(out) != 0) {
			t.Errorf("sysctl %q: known %v %q, want %v", sysctl, known, out, skip)
		}
	}
}

// TestCollectReadOnly: collect's commands only list. sysctl writes a
// "key=value" argument, and -w/-p/--system write too.
func TestCollectReadOnly(t *testing.T) {
	// Linux allows "=" in a link name: its knobs must not become an
	// assignment.
	host := map[string][]byte{BundleIPAddr: []byte(cmdoutFile(t, "mesh-state/node0/netns/host/ip-addr.txt") +
		"99: x=1: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN group default qlen 1000\n    link/ether 6a:1b:2c:3d:4e:5f brd ff:ff:ff:ff:ff:ff\n")}
	if args := sysctlArgsFrom(host); len(args) == 0 {
		t.Fatal("no sysctl arguments from the host's ip addr")
	}
	for _, a := range append(sysctlArgsFrom(host), cmdSysctl.args...) {
		if strings.Contains(a, "=") || a == "-w" || a == "-p" || a == "--system" || a == "--load" || a == "--write" {
			t.Errorf("sysctl argument %q would write", a)
		}
	}
	for _, c := range []collectCmd{cmdRoutes, cmdNeigh, cmdFDB} {
		if !slices.Contains(c.args, "show") {
			t.Errorf("%s is not a listing", c)
		}
	}
	if cmdConntrack.String() != "conntrack -L" || cmdSockets.String() != "ss -Htuln" || cmdIPVSTimeout.String() != "ipvsadm -L --timeout" {
		t.Errorf("%s, %s, %s: not the listings", cmdConntrack, cmdSockets, cmdIPVSTimeout)
	}
}
