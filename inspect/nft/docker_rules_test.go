package nft

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// The rules Docker writes for an encrypted overlay (--opt encrypted), built
// the way moby builds them, so the tests load exactly what a node has.

// dockerVNIBPF is moby's vniMatchBPF (daemon/libnetwork/drivers/overlay/
// bpf.go, Docker 24 and later): the classic BPF program of the -m bpf match
// that picks one VXLAN Network ID out of UDP datagrams.
func dockerVNIBPF(vni uint32) []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtPayloadOffset},
		bpf.TAX{},
		bpf.LoadIndirect{Off: 4, Size: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 8},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: vni, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: ^uint32(0)},
	})
	if err != nil {
		panic(err)
	}
	return prog
}

// dockerBytecode is moby's marshalXTBPF(vniMatchBPF(vni)): the --bytecode
// argument ("N,code jt jf k,...").
func dockerBytecode(vni uint32) string {
	var b strings.Builder
	prog := dockerVNIBPF(vni)
	fmt.Fprintf(&b, "%d", len(prog))
	for _, ins := range prog {
		fmt.Fprintf(&b, ",%d %d %d %d", ins.Op, ins.Jt, ins.Jf, ins.K)
	}
	return b.String()
}

// dockerU32 is the --u32 argument of moby's matchVXLANWithU32 (Docker up to
// 23.0, removed by "libn/d/overlay: only program xt_bpf rules"; rules left
// by an older daemon are not cleaned up).
func dockerU32(vni uint32) string { return fmt.Sprintf("0>>22&0x3C@12&0xFFFFFF00=%d", int(vni)<<8) }

// dockerEncryptionRules are the iptables-restore lines of moby's
// programMangle and programInput (encryption.go) for one VNI: the VXLAN
// match is "-p udp --dport 4789 -m bpf --bytecode …" (or -m u32 before
// 24.0), the mark is 0xD0C4E3 passed as decimal --set-mark.
func dockerEncryptionRules(vni uint32, u32 bool) (mangle, filter string) {
	match := fmt.Sprintf(`-p udp --dport 4789 -m bpf --bytecode "%s"`, dockerBytecode(vni))
	if u32 {
		match = fmt.Sprintf(`-p udp --dport 4789 -m u32 --u32 "%s"`, dockerU32(vni))
	}
	return "-A OUTPUT " + match + " -j MARK --set-mark 13681891",
		"-I INPUT -m policy --dir in --pol none " + match + " -j DROP"
}

// TestEncryptedRulesFixture: testdata/encrypted.rules holds moby's rules
// verbatim (two overlays of a Docker 28 node, VNIs 4097 and 4098, and the
// u32 pair an upgraded node keeps from Docker 23 for VNI 4099).
func TestEncryptedRulesFixture(t *testing.T) {
	b, err := os.ReadFile("testdata/encrypted.rules")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, c := range []struct {
		vni uint32
		u32 bool
	}{{4097, false}, {4098, false}, {4099, true}} {
		m, f := dockerEncryptionRules(c.vni, c.u32)
		for _, l := range []string{m, f} {
			if !strings.Contains(text, "\n"+l+"\n") {
				t.Errorf("testdata/encrypted.rules lacks Docker's line\n%s", l)
			}
		}
	}
	// Pin the bytecode to the program moby documents (ld poff; tax; ld
	// [x+4]; rsh #8; jeq #vni; ret #0; ret #-1).
	if got, want := dockerBytecode(4097), "7,32 0 0 4294963252,7 0 0 0,64 0 0 4,116 0 0 8,21 1 0 4097,6 0 0 0,6 0 0 4294967295"; got != want {
		t.Errorf("bytecode\n got  %s\n want %s", got, want)
	}
}
