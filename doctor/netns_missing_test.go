package doctor_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNamespaceNotCollected: a bundle without the ingress sandbox's folder.
// The host's DNAT leads to an address no namespace in the bundle owns;
// that is a fault (dnat-unowned) only when the bundle says it holds every
// namespace (NAMESPACES.txt, as collect writes it). Without that list it
// is not checked: Docker's metadata names the endpoint whose namespace is
// missing, or, without Docker's metadata, the owner may simply not have
// been collected.
func TestNamespaceNotCollected(t *testing.T) {
	const src = "../fixtures/bundles/modern"
	without := func(t *testing.T, list bool, docker bool) string {
		dir := withoutFiles(t, src, "netns/ingress_sbox")
		if !docker {
			os.RemoveAll(filepath.Join(dir, "docker"))
		}
		if list {
			ents, _ := os.ReadDir(filepath.Join(dir, "netns"))
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			os.WriteFile(filepath.Join(dir, "NAMESPACES.txt"), []byte(strings.Join(names, "\n")+"\n"), 0o644)
		}
		return dir
	}
	if r := checkBundle(t, without(t, true, true)); !hasCode(r, "dnat-unowned") {
		t.Errorf("every namespace listed, the sandbox's gone: want dnat-unowned:\n%s", textOf(t, r))
	}
	for _, c := range []struct {
		name         string
		docker       bool
		unknownNames string
	}{
		{"docker metadata", true, "Docker's endpoint ingress-sbox"},
		{"no docker metadata", false, "its owner may not have been collected"},
	} {
		r := checkBundle(t, without(t, false, c.docker))
		if hasCode(r, "dnat-unowned") || !strings.Contains(textOf(t, r), c.unknownNames) {
			t.Errorf("%s, no NAMESPACES.txt: want not checked, naming %q:\n%s", c.name, c.unknownNames, textOf(t, r))
		}
	}
}
