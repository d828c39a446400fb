package inspect

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

const fixtureBundles = "../fixtures/bundles"

// bundlePeers lists "ns/link -> ns/link" for every veth of the model, "?"
// for one whose peer is unresolved.
func bundlePeers(m *topology.Model) map[string]string {
	out := map[string]string{}
	for _, ns := range m.Namespaces {
		for _, l := range ns.Links {
			if l.Peer == nil {
				continue
			}
			v := "?"
			if l.Peer.Netns != "" && l.Peer.Ifname != "" {
				v = l.Peer.Netns + "/" + l.Peer.Ifname
			}
			out[ns.Name+"/"+l.Name] = v
		}
	}
	return out
}

// pairs turns "a/x=b/y" into both directions.
func pairs(ps ...string) map[string]string {
	out := map[string]string{}
	for _, p := range ps {
		a, b, _ := strings.Cut(p, "=")
		if b == "?" {
			out[a] = "?"
			continue
		}
		out[a], out[b] = b, a
	}
	return out
}

// TestBundleFixtures loads every recorded bundle and checks what it was
// built with (record.sh / render): the namespaces, the veth wiring, the
// Docker annotations, the IPVS services and that counters were kept.
func TestBundleFixtures(t *testing.T) {
	tests := []struct {
		name   string
		nss    []string
		peers  map[string]string
		docker map[string]topology.NetnsMeta
		// ipvs is the namespace with the FWM service, and its mark.
		ipvsNS   string
		fwmark   uint32
		backends int
	}{
		{
			name: "modern",
			nss:  []string{"host", "09cd513d96a2", "1-c5h7abz82p", "ingress_sbox"},
			peers: pairs(
				"host/eth0=?", // its peer is the LAN, off the node
				"host/veth9c2e4a1=ingress_sbox/eth1",
				"host/vethb07f3d5=09cd513d96a2/eth1",
				"1-c5h7abz82p/veth0=ingress_sbox/eth0",
				"1-c5h7abz82p/veth1=09cd513d96a2/eth0",
			),
			docker: map[string]topology.NetnsMeta{
				"09cd513d96a2": {Container: "web.1.tq1x9w2e3r4t5y6u7i8o9p0a1", Service: "web", Task: "web.1"},
				"1-c5h7abz82p": {Network: "ingress"},
				"ingress_sbox": {Network: "ingress"},
			},
			ipvsNS: "ingress_sbox", fwmark: 0x100, backends: 2,
		},
		{
			name: "docker112",
			nss:  []string{"host", "1-9wq1n0d5kt", "3f1e9b8c2a7d", "b81c7d0e44f2"},
			peers: pairs(
				"host/eth0=?",
				"host/veth5e0b6f2=3f1e9b8c2a7d/eth1",
				"host/vethd41a8c9=b81c7d0e44f2/eth1",
				"1-9wq1n0d5kt/veth0=3f1e9b8c2a7d/eth0",
				"1-9wq1n0d5kt/veth1=b81c7d0e44f2/eth0",
			),
			docker: map[string]topology.NetnsMeta{
				"b81c7d0e44f2": {Container: "web.1.e4r5t6y7u8i9o0p1a2s3d4f5g", Service: "web", Task: "web.1"},
				"1-9wq1n0d5kt": {Network: "ingress"},
				// Found by its address on ingress, not by its name.
				"3f1e9b8c2a7d": {Network: "ingress"},
			},
			ipvsNS: "3f1e9b8c2a7d", fwmark: 0x101, backends: 2,
		},
		{
			name: "eastwest",
			nss:  []string{"host", "1-k3m9xq2w7r", "5f0c3a9e1d27", "8b4d2f6a0c13", "lb_k3m9xq2w7"},
			peers: pairs(
				"host/eth0=?",
				"host/veth3a7c0e2=5f0c3a9e1d27/eth1",
				"host/veth8f1d6b4=8b4d2f6a0c13/eth1",
				"1-k3m9xq2w7r/veth0=lb_k3m9xq2w7/eth0",
				"1-k3m9xq2w7r/veth1=5f0c3a9e1d27/eth0",
				"1-k3m9xq2w7r/veth2=8b4d2f6a0c13/eth0",
			),
			docker: map[string]topology.NetnsMeta{
				"5f0c3a9e1d27": {Container: "front.1.m1n2b3v4c5x6z7l8k9j0h1g2f", Service: "front", Task: "front.1"},
				"8b4d2f6a0c13": {Container: "api.1.3lq0l7y0zq1x2c3v4b5n6m7a8", Service: "api", Task: "api.1"},
				"1-k3m9xq2w7r": {Network: "backend"},
				"lb_k3m9xq2w7": {Network: "backend"},
			},
			ipvsNS: "lb_k3m9xq2w7", fwmark: 0x102, backends: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(fixtureBundles, tt.name)
			m, err := Bundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Source != "bundle:"+dir {
				t.Errorf("source = %q", m.Source)
			}
			var names []string
			for _, ns := range m.Namespaces {
				names = append(names, ns.Name)
				if len(ns.Links) == 0 || ns.Firewall == nil || ns.IPVS == nil || len(ns.Errors) > 0 {
					t.Errorf("netns %s: %d links, firewall %v, ipvs %v, errors %q", ns.Name, len(ns.Links), ns.Firewall != nil, ns.IPVS != nil, ns.Errors)
				}
				if ns.Firewall != nil && len(ns.Firewall.Unparsed) > 0 {
					t.Errorf("netns %s: unparsed rules %+v", ns.Name, ns.Firewall.Unparsed)
				}
			}
			if d := cmp.Diff(tt.nss, names); d != "" {
				t.Errorf("namespaces (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.peers, bundlePeers(m)); d != "" {
				t.Errorf("veth peers (-want +got):\n%s", d)
			}
			// docker/*.json read, as the loading path attaches it.
			topology.AnnotateDocker(m)
			got := map[string]topology.NetnsMeta{}
			for _, ns := range m.Namespaces {
				if ns.Docker != nil {
					got[ns.Name] = *ns.Docker
				}
			}
			if d := cmp.Diff(tt.docker, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
				t.Errorf("docker annotations (-want +got):\n%s", d)
			}

			ipvs := m.Lookup(tt.ipvsNS).IPVS
			if !ipvs.Available || len(ipvs.Services) != 1 || ipvs.Services[0].FWMark != tt.fwmark || len(ipvs.Services[0].Dests) != tt.backends {
				t.Errorf("ipvs in %s: %+v", tt.ipvsNS, ipvs)
			}
			// The line added because this kernel cannot load it.
			snat := false
			for _, r := range m.Lookup(tt.ipvsNS).Firewall.Table("nat").Chain("POSTROUTING").Rules {
				snat = snat || (r.Match("ipvs") != nil && r.Target == "SNAT")
			}
			if !snat {
				t.Errorf("%s: no -m ipvs SNAT rule in nat POSTROUTING", tt.ipvsNS)
			}
			// Traffic ran while recording: some rule counted packets.
			counted := false
			for _, ns := range m.Namespaces {
				for _, tb := range ns.Firewall.Tables {
					for _, c := range tb.Chains {
						for _, r := range c.Rules {
							if !r.HasCounters {
								t.Fatalf("%s: rule without counters: %s", ns.Name, r.Text)
							}
							counted = counted || r.Packets > 0
						}
					}
				}
			}
			if !counted {
				t.Error("no rule counted a packet")
			}
			if m.Docker == nil || len(m.Docker.Services) == 0 {
				t.Errorf("docker services missing: %+v", m.Docker)
			}
		})
	}
}

// writeBundle writes files (path under dir -> content) and returns dir.
func writeBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fixtureFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureBundles, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBundleNotCollected(t *testing.T) {
	dir := writeBundle(t, map[string]string{
		"netns/host/ip-addr.txt":        fixtureFile(t, "modern/netns/host/ip-addr.txt"),
		"netns/zz/iptables-save.txt":    fixtureFile(t, "modern/netns/09cd513d96a2/iptables-save.txt"),
		"netns/aa/ip-addr.txt":          fixtureFile(t, "modern/netns/ingress_sbox/ip-addr.txt"),
		"netns/aa/ipvsadm.txt":          "",
		"netns/.DS_Store":               "garbage",
		"netns/README":                  "not a namespace",
		"NOTES.txt":                     "ipvsadm.txt not collected in any namespace: kernel has no IPVS\n\n",
		"docker/containers.json":        "[]",
		"docker/unrelated-file.txt":     "x",
		"netns/host/something-else.txt": "ignored",
	})
	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ns := range m.Namespaces {
		names = append(names, ns.Name)
	}
	if d := cmp.Diff([]string{"host", "aa", "zz"}, names); d != "" {
		t.Errorf("namespaces (-want +got):\n%s", d)
	}
	host, aa, zz := m.Namespaces[0], m.Namespaces[1], m.Namespaces[2]
	if host.Role != topology.RoleHost || host.Firewall != nil || host.IPVS != nil || len(host.Links) == 0 {
		t.Errorf("host: role %q firewall %v ipvs %v links %d", host.Role, host.Firewall, host.IPVS, len(host.Links))
	}
	// An empty ipvsadm.txt is "collected, no services", not "not collected".
	if aa.IPVS == nil || len(aa.IPVS.Services) != 0 {
		t.Errorf("aa: ipvs %+v, want empty table", aa.IPVS)
	}
	if zz.Links != nil || zz.Firewall == nil {
		t.Errorf("zz: links %v, firewall %v", zz.Links, zz.Firewall)
	}
	if d := cmp.Diff([]string{"ip-addr.txt not collected"}, zz.Errors); d != "" {
		t.Errorf("zz errors (-want +got):\n%s", d)
	}
	wantNotes := []string{
		"ipvsadm.txt not collected in any namespace: kernel has no IPVS",
		"docker services not collected (" + filepath.Join(dir, "docker", "services.json") + " missing)",
	}
	if d := cmp.Diff(wantNotes, m.Notes); d != "" {
		t.Errorf("notes (-want +got):\n%s", d)
	}
	// containers.json "[]": read, none (non-nil); the other two files
	// absent: not collected (nil).
	if m.Docker == nil || m.Docker.Containers == nil || len(m.Docker.Containers) != 0 || m.Docker.Networks != nil || m.Docker.Services != nil {
		t.Errorf("docker = %#v, want containers read and empty, networks and services not collected", m.Docker)
	}
}

func TestBundleErrors(t *testing.T) {
	good := fixtureFile(t, "modern/netns/host/iptables-save.txt")
	// A rule for a chain the table never declared, at a known line.
	lines := strings.Split(good, "\n")
	badLine := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "[0:0] -A DOCKER-INGRESS -j RETURN") {
			lines[i] = "[0:0] -A NO-SUCH-CHAIN -j RETURN"
			badLine = i + 1
			break
		}
	}
	if badLine == 0 {
		t.Fatal("fixture changed: no DOCKER-INGRESS RETURN rule")
	}
	tests := []struct {
		name      string
		files     map[string]string
		want      []string
		wantParse bool
	}{
		{"no host", map[string]string{"netns/aa/ip-addr.txt": ""}, []string{filepath.Join("netns", "host")}, false},
		{"host is a file", map[string]string{"netns/host": ""}, []string{"not a directory"}, false},
		{"bad iptables-save", map[string]string{
			"netns/host/ip-addr.txt":       fixtureFile(t, "modern/netns/host/ip-addr.txt"),
			"netns/host/iptables-save.txt": strings.Join(lines, "\n"),
		}, []string{filepath.Join("netns", "host", "iptables-save.txt") + ":" + strconv.Itoa(badLine) + ":"}, true},
		{"garbled ip addr", map[string]string{
			"netns/host/ip-addr.txt": "this is not ip addr output\n",
		}, []string{filepath.Join("netns", "host", "ip-addr.txt") + ":1:"}, true},
		{"garbled ipvsadm", map[string]string{
			"netns/host/ipvsadm.txt": "-A -f 256 -s rr\n-a -f banana\n",
		}, []string{filepath.Join("netns", "host", "ipvsadm.txt") + ":2:"}, true},
		{"garbled docker json", map[string]string{
			"netns/host/ip-addr.txt": fixtureFile(t, "modern/netns/host/ip-addr.txt"),
			"docker/networks.json":   "[{\"Name\": 3}]",
		}, []string{filepath.Join("docker", "networks.json"), "line 1 col"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeBundle(t, tt.files)
			_, err := Bundle(dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the bundle dir %s", err, dir)
			}
			var pe *parse.Error
			if errors.As(err, &pe) != tt.wantParse {
				t.Errorf("errors.As(*parse.Error) = %v, want %v (%v)", !tt.wantParse, tt.wantParse, err)
			}
		})
	}
}
