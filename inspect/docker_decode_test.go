package inspect

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// dockerJSONSeeds are the docker/*.json of every recorded bundle.
func dockerJSONSeeds(t testing.TB) [][]byte {
	files, err := filepath.Glob("../fixtures/*/*/docker/*.json")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../fixtures/*/*/*/docker/*.json")
	testdata, _ := filepath.Glob("testdata/docker/*.json")
	files = append(append(files, more...), testdata...)
	if len(files) < 10 {
		t.Fatalf("only %d docker JSON fixtures found", len(files))
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// sameDecoders decodes data into a fresh T with the fast decoder and with
// encoding/json: where the fast one succeeds, the standard one must too,
// with the same value (decodeArray trusts the fast one's success).
func sameDecoders[T any](t *testing.T, data []byte) {
	var fast []T
	if !fastDecode(data, &fast) {
		return
	}
	var std []T
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&std); err != nil || dec.More() {
		t.Fatalf("the fast decoder took %.200q, encoding/json refuses it: %v (more data: %v)", data, err, dec.More())
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("decoders differ on %.200q:\nfast %+v\nstd  %+v", data, fast, std)
	}
}

func TestDockerDecodersAgree(t *testing.T) {
	n := 0
	for _, b := range dockerJSONSeeds(t) {
		sameDecoders[network.Inspect](t, b)
		sameDecoders[container.InspectResponse](t, b)
		sameDecoders[swarm.Service](t, b)
		sameDecoders[netMeta](t, b)
		sameDecoders[ctrMeta](t, b)
		var v []any
		if fastDecode(b, &v) {
			n++
		}
	}
	if n == 0 {
		t.Fatal("the fast decoder decoded no fixture")
	}
}

func FuzzDockerDecoders(f *testing.F) {
	for _, b := range dockerJSONSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte(`[{"Name":"x","IPAM":{"Config":[{"Subnet":"10.0.0.0/24"}]},"Containers":{"a":{"IPv4Address":"10.0.0.2/24"}}}]`))
	f.Add([]byte(`[{"Name":"x","name":"y"}]`))
	f.Add([]byte(`[{"Name":"\ud800"}] `))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameDecoders[network.Inspect](t, data)
		sameDecoders[container.InspectResponse](t, data)
		sameDecoders[swarm.Service](t, data)
		sameDecoders[netMeta](t, data)
		sameDecoders[ctrMeta](t, data)
	})
}
