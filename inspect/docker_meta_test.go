package inspect

import (
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestDockerMetaAsAPI: every docker/ folder of the repository's fixtures
// (and testdata) reads to the same metadata decoded into what Meta reads
// (dockerMetaFromJSON, what a bundle is read with) as decoded into the
// API's objects and converted (DockerData.Meta, what the live reader
// does).
func TestDockerMetaAsAPI(t *testing.T) {
	dirs := []string{filepath.Join("testdata", "docker")}
	err := filepath.WalkDir("../fixtures", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == BundleDockerDir {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("%d docker folders, want the fixtures' (10 or more)", len(dirs))
	}
	for _, dir := range dirs {
		var in [3]jsonInput
		for i, name := range []string{BundleNetworksJSON, BundleContainerJSON, BundleServicesJSON} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			in[i] = jsonInput{name: name, data: data}
		}
		full, err := dockerDataFromJSON(in[0], in[1], in[2])
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		got, err := dockerMetaFromJSON(in[0], in[1], in[2])
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if got == nil || len(got.Networks)+len(got.Containers) == 0 {
			t.Errorf("%s: read nothing", dir)
		}
		if diff := cmp.Diff(full.Meta(), got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
			t.Errorf("%s (-API +read):\n%s", dir, diff)
		}
	}
}

// TestDockerMetaSkipsWhatItDoesNotRead: a value the API's type would not
// take in a field the metadata does not read (a network's creation time)
// does not refuse the document; one in a field it reads still does.
func TestDockerMetaSkipsWhatItDoesNotRead(t *testing.T) {
	nets := string(readTestdata(t, "networks.json"))
	if !strings.Contains(nets, `"Created": "`) {
		t.Fatal("testdata networks.json has no Created")
	}
	badTime := strings.Replace(nets, `"Created": "`, `"Created": "yesterday`, 1)
	if _, err := dockerDataFromJSON(jsonInput{"networks", []byte(badTime)}, jsonInput{}, jsonInput{}); err == nil {
		t.Fatal("the API's type takes a bad creation time: the test shows nothing")
	}
	m, err := DockerFromJSON([]byte(badTime), nil, nil)
	if err != nil || m == nil || len(m.Networks) == 0 {
		t.Fatalf("bad creation time: %v, %+v", err, m)
	}
	badIngress := strings.Replace(nets, `"Ingress": true`, `"Ingress": "yes"`, 1)
	if _, err := DockerFromJSON([]byte(badIngress), nil, nil); err == nil {
		t.Error("a bad Ingress was taken")
	}
}
