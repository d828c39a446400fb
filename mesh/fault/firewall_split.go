package fault

import "fmt"

// planFirewallSplit gives the node's host a legacy (x_tables) filter
// table whose FORWARD policy is DROP, as ufw or an old firewall script
// on iptables-legacy leaves it, while Docker's rules (and their accepts)
// are in nf_tables: both backends' hooks see every forwarded packet, and
// a drop in either is final.
func planFirewallSplit(p *planner) error {
	t, err := p.tableOf(p.k.Legacy, p.host(), "filter")
	if err != nil {
		return fmt.Errorf("legacy: %w", err)
	}
	old := chainOf(t, "FORWARD").Policy
	if old == "" {
		old = "ACCEPT" // no legacy table: nothing drops there
	}
	if old == "DROP" {
		return fmt.Errorf("%s's legacy filter FORWARD policy is DROP already (already broken?)", p.node.Name)
	}
	p.f.Detail = fmt.Sprintf("%s: iptables-legacy filter FORWARD policy DROP (was %s), while Docker's rules are in nf_tables", p.node.Name, old)
	p.expect(WhereHost, "")
	do := &RulesOp{Backend: BackendLegacy, Table: "filter", Lines: []string{":FORWARD DROP [0:0]"}}
	undo := &RulesOp{Backend: BackendLegacy, Table: "filter", Lines: []string{fmt.Sprintf(":FORWARD %s [0:0]", old)}}
	return p.step(p.with(p.host(), do), p.with(p.host(), undo))
}
