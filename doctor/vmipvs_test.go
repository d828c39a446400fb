package doctor_test

import (
	"context"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/source"
)

// vmWeightZero is `meshtrace collect` of a built-in mesh node with real
// IPVS (--lb ipvs, in the swarm VM's kernel) after `mesh break
// weight-zero`: this machine's kernel cannot hold that fault.
const vmWeightZero = "../fixtures/cmdout/vm-ipvs-weight-zero/node0"

// TestVMWeightZero: the drained service is the one finding above info, in
// the sandbox; the real kernel's IPVS timeouts come from the bundle.
func TestVMWeightZero(t *testing.T) {
	m, err := source.Load(context.Background(), source.Spec{Bundle: vmWeightZero})
	if err != nil {
		t.Fatal(err)
	}
	sbox := m.Lookup("ingress_sbox")
	if sbox == nil || sbox.IPVS == nil || !sbox.IPVS.Available || len(sbox.IPVS.Services) != 1 {
		t.Fatalf("ingress_sbox IPVS: %+v", sbox)
	}
	for _, d := range sbox.IPVS.Services[0].Dests {
		if d.Weight != 0 || d.WeightUnknown {
			t.Errorf("real server %s: weight %d (unknown %v), want a known 0", d.Addr, d.Weight, d.WeightUnknown)
		}
	}
	if to := sbox.IPVS.Timeouts; to == nil || to.TCP != 900 || to.TCPFin != 120 || to.UDP != 300 {
		t.Errorf("timeouts %+v, want 900/120/300 (ipvsadm-timeout.txt)", to)
	}
	r := doctor.Check(m, doctor.Options{})
	var got []string
	for _, f := range r.Findings {
		if f.Severity != doctor.Info {
			got = append(got, f.Code+"@"+f.Netns)
		}
	}
	if len(got) != 1 || got[0] != "backends-weight-zero@ingress_sbox" {
		t.Errorf("findings above info: %v, want backends-weight-zero@ingress_sbox only", got)
	}
}
