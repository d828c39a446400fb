package inspect

import (
	"bytes"
	"errors"
	"strings"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/kmod"
)

// collectCmd is one command of a namespace and the file it fills.
type collectCmd struct {
	file string
	name string
	args []string
	// argsFrom, when set, makes the arguments from what the namespace's
	// earlier commands printed (by file), nil: args.
	argsFrom func(prev map[string][]byte) []string
	// known, when set, may tell from the earlier output what the command
	// would print, so that it need not run.
	known func(prev map[string][]byte) ([]byte, bool)
	// unsafe, when set, says why running the command would make the
	// kernel load a missing module: it then runs nowhere, and a
	// namespace whose output is not known gets a note instead.
	unsafe error
	// filter, when set, rewrites the output before it is written (the
	// keys of ip xfrm state, see RedactXfrmKeys).
	filter func([]byte) []byte
	// skipEmpty: no file where the command printed nothing (the other
	// iptables backend, see cmdIptablesOther).
	skipEmpty bool
}

// inNetns is cmd as it runs in a namespace whose commands so far printed
// prev; known: out is what it would print, it need not run.
func (c collectCmd) inNetns(prev map[string][]byte) (cmd collectCmd, out []byte, known bool) {
	if c.known != nil {
		if out, ok := c.known(prev); ok {
			return c, out, true
		}
	}
	if c.argsFrom != nil {
		if args := c.argsFrom(prev); args != nil {
			c.args = args
		}
	}
	return c, nil, false
}

var (
	cmdIPAddr   = collectCmd{file: BundleIPAddr, name: "ip", args: []string{"-d", "addr"}}
	cmdIptables = collectCmd{file: BundleIptables, name: "iptables-save", args: []string{"-c"}}
	// `ipvsadm -S -n` is what the ipvsadm-save -n script runs.
	cmdIPVS        = collectCmd{file: BundleIPVS, name: "ipvsadm", args: []string{"-S", "-n"}}
	cmdIPVSTimeout = collectCmd{file: BundleIPVSTimeout, name: "ipvsadm", args: []string{"-L", "--timeout"}}
	// The rest of a namespace's state, each command asked for exactly
	// what the live reader reads: the IPv4 main table;
	// every IPv4 neighbour (`nud all`: plain `ip neigh` hides NOARP ones);
	// the whole FDB (the bundle reader keeps what the live one keeps);
	// the knobs of sysctlArgsFrom (they must come after ip -d addr); the
	// listening TCP and UDP sockets, numeric; the IPv4 conntrack table
	// (conntrack's default family; after sysctl, see noConntrack).
	cmdRoutes    = collectCmd{file: BundleRoutes, name: "ip", args: []string{"-4", "route", "show", "table", "main"}}
	cmdNeigh     = collectCmd{file: BundleNeigh, name: "ip", args: []string{"-4", "neigh", "show", "nud", "all"}}
	cmdFDB       = collectCmd{file: BundleFDB, name: "bridge", args: []string{"fdb", "show"}}
	cmdSysctl    = collectCmd{file: BundleSysctl, name: "sysctl", args: sysctlArgs(), argsFrom: sysctlArgsFrom}
	cmdSockets   = collectCmd{file: BundleSockets, name: "ss", args: []string{"-Htuln"}}
	cmdConntrack = collectCmd{file: BundleConntrack, name: "conntrack", args: []string{"-L"}, known: noConntrack}

	// What runs instead where a module is missing (see safe): ss reads
	// /proc/net/{tcp,udp}{,6} when PROC_ROOT is set (iproute2's ss.c,
	// tcp_show and udp_show, skip sock_diag then); the same listing,
	// but for the queue columns.
	cmdSocketsProc    = collectCmd{file: BundleSockets, name: "env", args: []string{"PROC_ROOT=/proc", "ss", "-Htuln"}}
	cmdIptablesLegacy = collectCmd{file: BundleIptables, name: "iptables-legacy-save", args: []string{"-c"}}
)

// noConntrack: a namespace whose sysctl.txt says nf_conntrack_count = 0, or
// has no such key at all (see noConntrackModule), has an empty table, which
// is what conntrack -L would print. Skipping it, as
// the live reader skips the dump, spares a walk of the node-wide conntrack
// hash per idle namespace.
func noConntrack(prev map[string][]byte) ([]byte, bool) {
	b, ok := prev[BundleSysctl]
	if !ok {
		return nil, false
	}
	s, _, err := parse.Sysctl(BundleSysctl, bytes.NewReader(b))
	return []byte{}, err == nil && (s["net.netfilter.nf_conntrack_count"] == "0" || noConntrackModule(s))
}

func (c collectCmd) String() string { return c.name + " " + strings.Join(c.args, " ") }

// available returns the commands this host can run, noting the others, as
// they may run without loading a module (see safe).
func (c *collector) available(o CollectOptions) []collectCmd {
	mods := o.Modules
	if mods == nil {
		mods = kmod.Host()
	}
	var out []collectCmd
	for _, cmd := range []collectCmd{cmdIPAddr, cmdIptables, cmdRoutes, cmdNeigh, cmdFDB, cmdSysctl, cmdSockets, cmdConntrack} {
		if err := c.run.LookPath(cmd.name); err != nil {
			c.note("%s not collected in any namespace: %s is not installed", cmd.file, cmd.name)
			continue
		}
		if cmd, ok := c.safe(cmd, mods); ok {
			out = append(out, cmd)
		}
	}
	out = append(out, c.availableExtra(mods, out)...)
	ipvs := []collectCmd{cmdIPVS, cmdIPVSTimeout, cmdIPVSStats}
	if err := c.run.LookPath(cmdIPVS.name); err != nil {
		for _, cmd := range ipvs {
			c.note("%s not collected in any namespace: ipvsadm is not installed", cmd.file)
		}
		return out
	}
	probe := o.IPVS
	if probe == nil {
		probe = netlinkIPVSProbe{mods}
	}
	// ipvsadm loads ip_vs (its own modprobe, and the family lookup):
	// the probe asks the gate first.
	if ok, reason := probe.KernelIPVS(); !ok {
		for _, cmd := range ipvs {
			c.note("%s not collected in any namespace: kernel has no IPVS (%s)", cmd.file, reason)
		}
		return out
	}
	return append(out, ipvs...)
}

// safe returns cmd as it may run without making the kernel load a module
// the gate says is missing (kmod's needs), or false when it may not run at
// all (noted). ss without the sock_diag modules reads /proc/net instead.
// conntrack -L without ctnetlink is unsafe: it runs nowhere, but a
// namespace whose table sysctl says is empty still gets its (empty) file.
// iptables-save without nf_tables: iptables-legacy-save when installed
// (no rule can be an nf_tables one, and it loads nothing), else
// iptables-save only when `-V` says it is the legacy variant.
func (c *collector) safe(cmd collectCmd, mods kmod.Gate) (collectCmd, bool) {
	var ae *kmod.AbsentError
	switch cmd.file {
	case BundleSockets:
		if errors.As(kmod.NeedSockets.Check(mods), &ae) {
			c.note("%s from `%s` (/proc/net, not sock_diag): %s", cmd.file, cmdSocketsProc, ae.Reason())
			return cmdSocketsProc, true
		}
	case BundleConntrack:
		cmd.unsafe = kmod.NeedConntrack.Check(mods)
	case BundleIptables:
		err := kmod.NeedNFTables.Check(mods)
		if !errors.As(err, &ae) {
			return cmd, true
		}
		if c.run.LookPath(cmdIptablesLegacy.name) == nil {
			c.note("%s from `%s`: %s", cmd.file, cmdIptablesLegacy, ae.Reason())
			return cmdIptablesLegacy, true
		}
		if v, verr := c.run.Run(c.ctx, "", cmd.name, "-V"); verr == nil && !nftVariant(v) {
			return cmd, true
		}
		c.note("%s not collected in any namespace: %v", cmd.file, err)
		return cmd, false
	}
	return cmd, true
}
