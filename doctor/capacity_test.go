package doctor_test

import (
	"os"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
)

const vm28 = "../fixtures/swarm-vm28/collect"

// TestSubnetExhausted: the recorded Docker 28 node's appnet (gateway, two
// VIPs, five task endpoints: 10.0.1.1-8) is fine in its /24; the same
// network given a /29 (six usable addresses, seven of them taken) is out of
// addresses, and named so.
func TestSubnetExhausted(t *testing.T) {
	if r := checkBundle(t, vm28); hasCode(r, "subnet-exhausted") {
		t.Fatalf("the recorded node: %s", textOf(t, r))
	}
	dir := editBundle(t, vm28, map[string]func(string) string{
		"docker/networks.json": func(s string) string {
			if !strings.Contains(s, `"Subnet": "10.0.1.0/24"`) {
				t.Fatal("networks.json has no appnet subnet")
			}
			return strings.Replace(s, `"Subnet": "10.0.1.0/24"`, `"Subnet": "10.0.1.0/29"`, 1)
		},
	})
	r := checkBundle(t, dir)
	f := finding(r, "subnet-exhausted")
	if f == nil || f.Severity != doctor.Error || !strings.Contains(f.Summary, "appnet (10.0.1.0/29) is out of addresses: at least 7 of its 6") {
		t.Fatalf("appnet in a /29: %s", textOf(t, r))
	}
	// Without Docker's networks it is not checked, and says so.
	r = checkBundle(t, withoutFiles(t, dir, "docker/networks.json"))
	if hasCode(r, "subnet-exhausted") || !strings.Contains(lastLine(textOf(t, r)), "subnet exhaustion (docker network inspect not collected") {
		t.Errorf("without networks.json: %s", lastLine(textOf(t, r)))
	}
}

// TestVXLANPortShared: a VXLAN device of the host's own on Docker's port
// 4789 (recorded: ip -d addr of two such devices), with another VNI
// (warning) and with the VNI of the node's overlay appnet, 4097 (error).
func TestVXLANPortShared(t *testing.T) {
	if r := checkBundle(t, vm28); hasCode(r, "vxlan-port-shared") {
		t.Fatalf("the recorded node: %s", textOf(t, r))
	}
	rec, err := os.ReadFile("../fixtures/cmdout/variants/host-vxlan-ip-d-addr.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, devs, ok := strings.Cut(string(rec), "\n2: vx4789")
	if !ok {
		t.Fatal("recording has no vx4789")
	}
	devs = "90: vx4789" + strings.Replace(devs, "\n3: vxovl", "\n91: vxovl", 1)
	for _, c := range []struct {
		keep string // the device kept
		sev  doctor.Severity
		want string
	}{
		{"vx4789", doctor.Warning, "its VNI 1 is none of theirs"},
		{"vxovl", doctor.Error, "its VNI 4097 is also the overlay"},
	} {
		text := devs
		if c.keep == "vx4789" {
			text, _, _ = strings.Cut(devs, "\n91: vxovl")
			text += "\n"
		} else {
			_, text, _ = strings.Cut(devs, "\n91: vxovl")
			text = "91: vxovl" + text
		}
		dir := editBundle(t, vm28, map[string]func(string) string{
			"netns/host/ip-addr.txt": func(s string) string { return s + text },
		})
		r := checkBundle(t, dir)
		f := finding(r, "vxlan-port-shared")
		if f == nil || f.Severity != c.sev || !strings.Contains(f.Summary, c.keep) || !strings.Contains(f.Summary, c.want) {
			t.Errorf("%s: %s", c.keep, textOf(t, r))
		}
	}
}

func finding(r *doctor.Report, code string) *doctor.Finding {
	for i := range r.Findings {
		if r.Findings[i].Code == code {
			return &r.Findings[i]
		}
	}
	return nil
}
