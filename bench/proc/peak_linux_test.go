package proc

import (
	"os/exec"
	"testing"
)

// TestPeakNotInherited: a command started after this process touched 400
// MiB (and let it go) reports its own peak, not this process's (vfork +
// exec hands the parent's peak to the child's ru_maxrss).
func TestPeakNotInherited(t *testing.T) {
	big := make([]byte, 400<<20)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	big = nil
	u, err := Check(exec.Command("true"))
	if err != nil {
		t.Fatal(err)
	}
	if u.RSSMB() > 200 {
		t.Errorf("true's peak %.0f MiB: this process's 400 MiB came with it", u.RSSMB())
	}
}
