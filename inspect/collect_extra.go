package inspect

import "github.com/meshtrace/meshtrace/internal/kmod"

// availableExtra returns the commands of issues 13 and 17 this host can run
// (the other iptables backend, the xfrm state, the counters), noting the
// others; chosen are the commands available chose before them.
func (c *collector) availableExtra(mods kmod.Gate, chosen []collectCmd) []collectCmd {
	var out []collectCmd
	if c.otherBackend(chosen) {
		out = append(out, cmdIptablesOther)
	}
	// ip xfrm opens a NETLINK_XFRM socket, which loads xfrm_user.
	if err := kmod.NeedXfrm.Check(mods); err != nil {
		c.note("%s, %s not collected in any namespace: %v", BundleXfrmState, BundleXfrmPolicy, err)
	} else if c.installed(cmdXfrmState) {
		out = append(out, cmdXfrmState, cmdXfrmPolicy)
	}
	for _, cmd := range []collectCmd{cmdSNMP, cmdNetstat, cmdConntrackStat, cmdLinkStats} {
		if c.installed(cmd) {
			out = append(out, cmd)
		}
	}
	return out
}

// installed reports whether cmd's program is installed, noting it when not.
func (c *collector) installed(cmd collectCmd) bool {
	if err := c.run.LookPath(cmd.name); err != nil {
		c.note("%s not collected in any namespace: %s is not installed", cmd.file, cmd.name)
		return false
	}
	return true
}

// otherBackend says whether to run iptables-legacy-save besides the
// iptables-save collect chose: only when that one reads nf_tables (the
// nf_tables variant); when it is a legacy one, the legacy rules are in
// iptables-save.txt. Where the legacy backend is not read, a note says so:
// a missing iptables-legacy-save.txt means "no legacy table" only where
// collect ran it.
func (c *collector) otherBackend(chosen []collectCmd) bool {
	for _, cmd := range chosen {
		if cmd.file != BundleIptables {
			continue
		}
		if cmd.name == cmdIptablesLegacy.name {
			return false // see safe: no nf_tables, every rule is a legacy one
		}
		v, err := c.run.Run(c.ctx, "", cmd.name, "-V")
		switch {
		case err != nil:
			c.note("%s not collected in any namespace: %s -V: %s", BundleIptablesLegacy, cmd.name, cmdError(err))
			return false
		case !nftVariant(v):
			c.note("%s not collected: %s is the legacy variant, %s holds the legacy rules (nf_tables ones are not collected)",
				BundleIptablesLegacy, cmd.name, BundleIptables)
			return false
		}
		return c.installed(cmdIptablesOther)
	}
	c.note("%s not collected in any namespace: neither is %s", BundleIptablesLegacy, BundleIptables)
	return false
}
