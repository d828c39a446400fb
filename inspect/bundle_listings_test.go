package inspect

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

// listingBundle copies the recorded bundle rel (under fixtures/) into a
// temporary directory, each namespace's iptables-save.txt replaced by its
// per-table listings in format (fixtures/cmdout/listings, record.sh) and
// its ipvsadm-save by the `ipvsadm -Ln` printed from it: a bundle
// assembled by hand from what people paste.
func listingBundle(t *testing.T, rel, format string) string {
	t.Helper()
	src := filepath.Join("..", "fixtures", rel)
	listings := filepath.Join("..", "fixtures", "cmdout", "listings", rel)
	dst := t.TempDir()
	replaced := 0
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, r), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch d.Name() {
		case BundleIptables:
			tables, _ := filepath.Glob(filepath.Join(listings, strings.TrimSuffix(r, ".txt"), format, "iptables-*.txt"))
			if len(b) > 0 && len(tables) == 0 {
				t.Fatalf("no %s listings of %s", format, path)
			}
			for _, tf := range tables {
				lb, err := os.ReadFile(tf)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dst, filepath.Dir(r), filepath.Base(tf)), lb, 0o644); err != nil {
					return err
				}
			}
			if len(tables) > 0 {
				replaced++
				return nil
			}
		case BundleIPVS:
			if ln, err := os.ReadFile(filepath.Join(listings, strings.TrimSuffix(r, ".txt"), "ipvsadm-Ln.txt")); err == nil {
				b = ln
			}
		}
		return os.WriteFile(filepath.Join(dst, r), b, 0o644)
	})
	if err != nil || replaced == 0 {
		t.Fatalf("copy %s: %v (%d iptables-save replaced)", src, err, replaced)
	}
	return dst
}

// TestBundleListingsSameAnswers: recorded bundles assembled from `iptables
// -S`, `-S -v`, `-L -n -v -x --line-numbers` or `-L -n -v` listings (and
// `ipvsadm -Ln`) instead of iptables-save read to the same model: the same
// roles, published ports, paths and doctor findings (the rule counters
// aside, which -S does not show and -L -n -v rounds).
func TestBundleListingsSameAnswers(t *testing.T) {
	for _, rel := range []string{"bundles/modern", "bundles/docker112", "bundles/eastwest", "swarm-vm/node0",
		"cmdout/mesh-state/node0", "cmdout/vm-ipvs-weight-zero/node0", "captures/bundle-node0-broken"} {
		want := answers(t, filepath.Join("..", "fixtures", rel))
		for _, format := range []string{"S", "S-v", "L-nvx", "L-nv"} {
			got := answers(t, listingBundle(t, rel, format))
			if got != want {
				t.Errorf("%s from %s listings:\n%s\nfrom iptables-save:\n%s", rel, format, got, want)
			}
		}
	}
}

// answers reads a bundle and says, as JSON without counters or file lines,
// what meshtrace answers about it.
func answers(t *testing.T, dir string) string {
	t.Helper()
	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	topology.Classify(m)
	out := map[string]any{}
	roles := map[string]topology.Role{}
	for _, ns := range m.Namespaces {
		roles[ns.Name] = ns.Role
		if ns.Firewall != nil && len(ns.Firewall.Unparsed) > 0 {
			t.Errorf("%s: netns %s: not understood %+v", dir, ns.Name, ns.Firewall.Unparsed)
		}
	}
	out["roles"] = roles
	var paths []*topology.Path
	pub := topology.PublishedPorts(m)
	for _, p := range pub {
		path, err := topology.FindPath(m, topology.Query{Proto: p.Proto, Port: p.Port})
		if err != nil {
			t.Fatal(err)
		}
		// counters, and lines: of the file each rule was read from
		for i := range path.Hops {
			path.Hops[i].Packets, path.Hops[i].Line = 0, 0
		}
		for i := range path.Backends {
			for j := range path.Backends[i].Hops {
				path.Backends[i].Hops[j].Packets, path.Backends[i].Hops[j].Line = 0, 0
			}
		}
		paths = append(paths, path)
	}
	out["published"], out["paths"] = pub, paths
	var findings []string
	for _, f := range doctor.Check(m, doctor.Options{}).Findings {
		findings = append(findings, string(f.Severity)+" "+f.Code+" "+f.Netns+" "+f.Port+": "+f.Summary)
	}
	out["findings"] = findings
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBundleIptablesFiles: which iptables files of a bundle namespace are
// read, and what a missing table means.
func TestBundleIptablesFiles(t *testing.T) {
	host := func(dir string) string { return filepath.Join(dir, BundleNetnsDir, BundleHost) }
	// only the nat listing of the host: raw, mangle and filter were not
	// collected, so the path cannot be followed past the host's first
	// table, raw PREROUTING: unknown, not "complete" and not a fault
	dir := listingBundle(t, "bundles/modern", "S")
	for _, tb := range []string{"filter", "mangle", "raw", "security"} {
		if err := os.Remove(filepath.Join(host(dir), BundleIptablesTable(tb))); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	topology.Classify(m)
	if nc := m.Lookup("host").Firewall.NotCollected; strings.Join(nc, ",") != "mangle,security,raw,filter" {
		t.Errorf("not collected %v", nc)
	}
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	last := p.Hops[len(p.Hops)-1]
	if p.Verdict != topology.VerdictUnknown || last.Kind != topology.HopUnknown || last.Code != topology.UnknownNotCollected ||
		last.Netns != "host" || !strings.Contains(last.Reason, "table raw was not collected") {
		t.Errorf("path %+v", p.Hops)
	}
	for _, f := range doctor.Check(m, doctor.Options{}).Findings {
		if f.Severity != doctor.Info {
			t.Errorf("a table not collected is blamed: %+v", f)
		}
	}

	// iptables-save.txt and listings: iptables-save wins, the listings
	// are not read (this one would not parse), and a note says so
	dir = listingBundle(t, "bundles/modern", "S")
	src, _ := os.ReadFile(filepath.Join("..", "fixtures", "bundles", "modern", BundleNetnsDir, BundleHost, BundleIptables))
	if err := os.WriteFile(filepath.Join(host(dir), BundleIptables), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host(dir), BundleIptablesTable("nat")), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err = Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	note := "netns host: iptables-mangle.txt, iptables-security.txt, iptables-raw.txt, iptables-filter.txt, iptables-nat.txt not read: iptables-save.txt holds every table"
	found := false
	for _, n := range m.Notes {
		found = found || n == note
	}
	if fw := m.Lookup("host").Firewall; !found || fw.Backend != "nf_tables" || len(fw.NotCollected) != 0 {
		t.Errorf("notes %q, firewall backend %q not collected %v", m.Notes, fw.Backend, fw.NotCollected)
	}

	// a listing that does not read fails the bundle, naming file and line
	if err := os.Remove(filepath.Join(host(dir), BundleIptables)); err != nil {
		t.Fatal(err)
	}
	_, err = Bundle(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(host(dir), "iptables-nat.txt")+":1: not iptables -S") {
		t.Errorf("got %v", err)
	}
}
