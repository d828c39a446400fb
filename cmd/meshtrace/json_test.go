package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestJSONDocs runs every command that prints -o json on recorded fixtures
// and holds docs/json.md to what they print: each document is an object
// whose first key is schema_version, and its section of docs/json.md names
// every top-level key (so the description cannot drift from the output).
// trace prints replay's document (trace.WriteJSON for both); it needs a
// live capture and root, so replay stands for it here.
func TestJSONDocs(t *testing.T) {
	const (
		vm28 = "../../fixtures/swarm-vm28/collect"
		vm   = "../../fixtures/swarm-vm/node0"
		caps = "../../fixtures/captures/"
	)
	doc, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := jsonSections(string(doc))
	seen := map[string]bool{}
	for _, c := range []struct {
		section string
		args    []string
	}{
		{"inspect", []string{"inspect", "--from", vm28}},
		{"inspect", []string{"inspect", "--from", vm}},
		{"path", []string{"path", "--from", vm28, "--port", "8080"}},
		{"path", []string{"path", "--from", vm, "--vip", "10.0.1.2", "--netns", "caller.1", "--port", "80"}},
		{"path --service", []string{"path", "--from", vm28, "--service", "api", "--from-task", "caller.1"}},
		{"path --dns", []string{"path", "--from", vm28, "--dns", "tasks.rr", "--from-task", "caller.1"}},
		{"doctor", []string{"doctor", "--from", vm28}},
		{"swarm check", []string{"swarm", "check", "--from", "../../fixtures/mesh-bundle"}},
		{"swarm path", []string{"swarm", "path", "--from", "../../fixtures/mesh-bundle", "--port", "8080"}},
		{"doctor", []string{"doctor", "--from", vm}},
		{"diff", []string{"diff", vm28, "../../fixtures/swarm-vm28/plain"}},
		{"trace and replay", []string{"replay", caps + "mesh-tcp.pcapng", "--from", caps + "bundle-node0"}},
		{"trace and replay", []string{"replay", caps + "truncated.pcapng"}},
		// both nodes' captures of an east-west call through ESP (esp, hops' esp)
		{"trace and replay", []string{"replay", "swarm-node0=" + espFixture + "/node0.pcapng", "swarm-node1=" + espFixture + "/node1.pcapng",
			"--from", espFixture + "/swarm", "--vip", "10.0.1.2", "--netns", "ff6511218624", "--port", "80"}},
	} {
		out, code := run(t, append(c.args, "-o", "json")...)
		if code != 0 && code != 3 && code != 4 && code != 5 && !(code == 1 && strings.Contains(c.args[1], "truncated")) {
			t.Fatalf("%v: exit %d\n%s", c.args, code, out)
		}
		if !strings.HasPrefix(out, "{\n  \"schema_version\": 1,") {
			t.Errorf("%v: does not begin with schema_version:\n%.200s", c.args, out)
		}
		// The document is out up to its closing brace (a failing command
		// appends its message after it).
		var keys map[string]json.RawMessage
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&keys); err != nil {
			t.Fatalf("%v: %v\n%.300s", c.args, err, out)
		}
		sec, ok := sections[c.section]
		if !ok {
			t.Fatalf("docs/json.md has no section %q", c.section)
		}
		seen[c.section] = true
		for k := range keys {
			if !strings.Contains(sec, "`"+k+"`") {
				t.Errorf("%v prints %q, which docs/json.md's section %q does not name", c.args, k, c.section)
			}
		}
	}
	for name := range sections {
		if !seen[name] && name != "Not versioned" {
			t.Errorf("docs/json.md's section %q is not checked against a command here", name)
		}
	}
}

// jsonSections are docs/json.md's "## NAME" sections by name.
func jsonSections(doc string) map[string]string {
	out := map[string]string{}
	heads := regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatchIndex(doc, -1)
	for i, h := range heads {
		end := len(doc)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		out[doc[h[2]:h[3]]] = doc[h[1]:end]
	}
	return out
}
