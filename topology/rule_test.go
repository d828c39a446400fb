package topology_test

import "testing"

// TestRuleAccessors: the typed questions code outside topology asks of a
// rule instead of reading its text, and a rewrite of a target argument
// rendered the way iptables-save prints it.
func TestRuleAccessors(t *testing.T) {
	f := fw(t, "rules", `*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -d 10.255.0.5/32 -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80
-A PREROUTING ! -p udp -j RETURN
-A PREROUTING -p 6 -j RETURN
COMMIT
*mangle
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 10.0.1.2/32 -j MARK --set-xmark 0x100/0xffffffff
-A OUTPUT -d 10.0.1.0/24 -j MARK --set-xmark 0x101/0xffffffff
COMMIT
`)
	nat := f.Table("nat").Chain("PREROUTING").Rules
	if !nat[0].ProtoIs("tcp") || nat[0].ProtoIs("udp") || nat[1].ProtoIs("udp") || nat[1].ProtoIs("tcp") || !nat[2].ProtoIs("tcp") {
		t.Errorf("ProtoIs: %v %v %v %v %v", nat[0].ProtoIs("tcp"), nat[0].ProtoIs("udp"), nat[1].ProtoIs("udp"), nat[1].ProtoIs("tcp"), nat[2].ProtoIs("tcp"))
	}
	r := nat[0].WithTargetArgs("to-ports", "81")
	if want := "-A PREROUTING -d 10.255.0.5/32 -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 81"; r.Text != want || nat[0].TargetOpts[0].Args[0] != "80" {
		t.Errorf("rewritten %q (original's arg %q), want %q", r.Text, nat[0].TargetOpts[0].Args[0], want)
	}
	mangle := f.Table("mangle").Chain("OUTPUT").Rules
	if a, ok := mangle[0].MarksDst(); !ok || a.String() != "10.0.1.2" {
		t.Errorf("MarksDst of a /32: %v %v", a, ok)
	}
	if _, ok := mangle[1].MarksDst(); ok {
		t.Error("MarksDst of a /24")
	}
}
