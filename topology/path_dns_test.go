package topology_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

const swarmVMNode = fixturesDir + "/swarm-vm/node0"

func loadSource(t *testing.T, dir string) *topology.Model {
	t.Helper()
	m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// resolverPorts are the ports a task's recorded DOCKER_OUTPUT DNATs
// 127.0.0.11:53 to, by protocol.
func resolverPorts(t *testing.T, bundle, netns string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "netns", netns, "iptables-save.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`-A DOCKER_OUTPUT -d 127.0.0.11/32 -p (\w+) .* --to-destination 127.0.0.11:(\d+)`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	if len(out) != 2 {
		t.Fatalf("%s: resolver ports %v", netns, out)
	}
	return out
}

// withFile copies a bundle with one file written anew (relative to it).
func withFile(t *testing.T, bundle, rel, text string) string {
	t.Helper()
	dir := t.TempDir()
	testutil.CopyTree(t, bundle, dir, nil)
	if err := os.WriteFile(filepath.Join(dir, rel), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ssOf is `ss -Htuln` of a task whose resolver listens on ports (as Docker's
// does: both on 127.0.0.11), and its server on 80.
func ssOf(ports map[string]string) string {
	return "udp UNCONN 0      0      127.0.0.11:" + ports["udp"] + " 0.0.0.0:*\n" +
		"tcp LISTEN 0      4096   127.0.0.11:" + ports["tcp"] + " 0.0.0.0:*\n" +
		"tcp LISTEN 0      9               *:80          *:*\n"
}

// dockerTruth reads what the recorded engine says (services.json and
// networks.json, decoded here on their own): the VIP of each service by
// network name, and the task addresses of each service by network name.
func dockerTruth(t *testing.T, bundle string) (vips map[string]map[string]string, tasks map[string]map[string][]string) {
	t.Helper()
	var nets []struct {
		ID, Name string
		Services map[string]struct {
			Tasks []struct{ EndpointIP string }
		}
	}
	var svcs []struct {
		Spec     struct{ Name string }
		Endpoint struct {
			VirtualIPs []struct{ NetworkID, Addr string }
		}
	}
	for f, v := range map[string]any{"networks.json": &nets, "services.json": &svcs} {
		b, err := os.ReadFile(filepath.Join(bundle, "docker", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	byID := map[string]string{}
	tasks = map[string]map[string][]string{}
	for _, n := range nets {
		byID[n.ID] = n.Name
		for svc, s := range n.Services {
			for _, tk := range s.Tasks {
				if tasks[svc] == nil {
					tasks[svc] = map[string][]string{}
				}
				tasks[svc][n.Name] = append(tasks[svc][n.Name], tk.EndpointIP)
			}
		}
	}
	vips = map[string]map[string]string{}
	for _, s := range svcs {
		for _, v := range s.Endpoint.VirtualIPs {
			if vips[s.Spec.Name] == nil {
				vips[s.Spec.Name] = map[string]string{}
			}
			vips[s.Spec.Name][byID[v.NetworkID]], _, _ = strings.Cut(v.Addr, "/")
		}
	}
	return vips, tasks
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

// TestDNSPath: a lookup from the recorded 20.10 node's caller task. The
// bundle carries no sockets: the path goes to the DNAT Docker wrote and
// says the data ends there. With the task's sockets it is complete and
// answers as Docker's resolver does (a service's VIP on the caller's
// network, tasks.NAME and a dnsrr service's task addresses, anything else
// forwarded); without the resolver's socket or its DNAT it breaks, and says
// why.
func TestDNSPath(t *testing.T) {
	m := loadSource(t, swarmVMNode)
	caller, err := topology.TaskNetns(m, "caller.1")
	if err != nil {
		t.Fatal(err)
	}
	ports := resolverPorts(t, swarmVMNode, caller.Name)
	p, err := topology.FindDNSPath(m, topology.DNSQuery{Name: "api", From: caller.Name})
	if err != nil {
		t.Fatal(err)
	}
	if p.Verdict != topology.VerdictUnknown || len(p.Hops) != 2 || p.Hops[0].Kind != topology.HopDNAT || p.Hops[0].To.String() != "127.0.0.11:"+ports["udp"] ||
		p.Hops[1].Kind != topology.HopUnknown || !strings.Contains(p.Hops[1].Reason, "(ss) were not collected") {
		t.Fatalf("no sockets: %+v", p)
	}

	full := withFile(t, swarmVMNode, "netns/"+caller.Name+"/ss.txt", ssOf(ports))
	m = loadSource(t, full)
	vips, tasks := dockerTruth(t, swarmVMNode)
	for _, c := range []struct {
		name, proto string
		want        []string
		forwarded   bool
	}{
		{"api", "udp", []string{vips["api"]["appnet"]}, false},
		{"API.", "tcp", []string{vips["api"]["appnet"]}, false},
		{"tasks.api", "udp", tasks["api"]["appnet"], false},
		{"rr", "udp", tasks["rr"]["appnet"], false},
		{"web", "udp", nil, true}, // web is on ingress only, caller on appnet only
		{"example.com", "udp", nil, true},
	} {
		p, err := topology.FindDNSPath(m, topology.DNSQuery{Name: c.name, From: caller.Name, Proto: c.proto})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(c.want)
		slices.Sort(want)
		if p.Verdict != topology.VerdictComplete || p.Forwarded != c.forwarded || !slices.Equal(addrStrings(p.Answer), want) ||
			p.Resolver.String() != "127.0.0.11:"+ports[c.proto] {
			var b strings.Builder
			topology.WriteDNSPathText(&b, p)
			t.Errorf("%s/%s: want %v (forwarded %v), got:\n%s", c.proto, c.name, want, c.forwarded, b.String())
		}
	}
	if len(tasks["rr"]["appnet"]) != 2 || vips["api"]["appnet"] == "" {
		t.Fatalf("the recording changed: %v %v", tasks, vips)
	}

	for name, c := range map[string]struct {
		file, text string
		code       topology.Code
	}{
		"no listener": {"netns/" + caller.Name + "/ss.txt", "tcp LISTEN 0      9               *:80          *:*\n", topology.BreakDNSNoListener},
		"no dnat":     {"netns/" + caller.Name + "/iptables-save.txt", dropLines(t, swarmVMNode, caller.Name, "-A DOCKER_OUTPUT "), topology.BreakDNSRulesMissing},
	} {
		dir := withFile(t, full, c.file, c.text)
		p, err := topology.FindDNSPath(loadSource(t, dir), topology.DNSQuery{Name: "api", From: caller.Name})
		if err != nil {
			t.Fatal(err)
		}
		last := p.Hops[len(p.Hops)-1]
		if p.Verdict != topology.VerdictBroken || last.Kind != topology.HopBreak || last.Code != c.code || len(p.Answer) != 0 {
			t.Errorf("%s: %+v", name, p)
		}
	}
}

func dropLines(t *testing.T, bundle, netns, sub string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "netns", netns, "iptables-save.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.Contains(l, sub) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// TestTaskNetns: a task is found by its netns, task name, container name
// or container ID; an unknown name lists the tasks.
func TestTaskNetns(t *testing.T) {
	m := loadSource(t, swarmVMNode)
	want := m.Lookup("d6706d6e5669")
	if want == nil || want.Docker == nil || want.Docker.Task != "caller.1" {
		t.Fatalf("the recording changed: %+v", want)
	}
	var id string
	for _, c := range m.Docker.Containers {
		if c.Task == "caller.1" {
			id = c.ID
		}
	}
	for _, name := range []string{"d6706d6e5669", "caller.1", want.Docker.Container, id, id[:12]} {
		ns, err := topology.TaskNetns(m, name)
		if err != nil || ns != want {
			t.Errorf("%q: %v, %v", name, ns, err)
		}
	}
	_, err := topology.TaskNetns(m, "nosuch.1")
	if err == nil || !strings.Contains(err.Error(), "caller.1 (netns d6706d6e5669)") || !strings.Contains(err.Error(), "web.3") {
		t.Errorf("unknown task: %v", err)
	}
	if _, err := topology.TaskNetns(m, "web"); err == nil {
		t.Error("a service's name is no task")
	}
}

// TestDNSPathDocker28: from the caller task of the recorded Docker 28 node
// (its collect bundle has every file), each lookup's path is complete and
// answers what the node's embedded DNS answered at recording time
// (truth/dns.txt: busybox nslookup NAME 127.0.0.11 in caller's netns); a
// name it did not answer (sapi, on a network caller is not on) is
// forwarded.
func TestDNSPathDocker28(t *testing.T) {
	const vm28 = fixturesDir + "/swarm-vm28"
	m := loadSource(t, vm28+"/collect")
	caller, err := topology.TaskNetns(m, "caller.1")
	if err != nil {
		t.Fatal(err)
	}
	truth, err := os.ReadFile(vm28 + "/truth/dns.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(truth), "\n") {
		name, answer, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		want := strings.Fields(answer)
		slices.Sort(want)
		p, err := topology.FindDNSPath(m, topology.DNSQuery{Name: name, From: caller.Name})
		if err != nil {
			t.Fatal(err)
		}
		if p.Verdict != topology.VerdictComplete || !slices.Equal(addrStrings(p.Answer), want) || p.Forwarded != (len(want) == 0) {
			var b strings.Builder
			topology.WriteDNSPathText(&b, p)
			t.Errorf("%s: dockerd answered %v, got:\n%s", name, want, b.String())
		}
	}
	if n < 4 {
		t.Fatalf("truth/dns.txt has %d lookups", n)
	}
}

// TestDNSPathDockerFileMissing: with one of the Docker 28 node's
// docker/*.json missing (a worker lists no services; a bundle assembled by
// hand), each lookup in truth/dns.txt either answers what dockerd answered
// or is unknown: an answer is never made of the metadata not collected (a
// VIP service's name read as dnsrr for want of services.json, a service's
// name forwarded for want of networks.json).
func TestDNSPathDockerFileMissing(t *testing.T) {
	const vm28 = fixturesDir + "/swarm-vm28"
	truth, err := os.ReadFile(vm28 + "/truth/dns.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"services.json", "networks.json"} {
		dir := t.TempDir()
		testutil.CopyTree(t, vm28+"/collect", dir, nil)
		if err := os.Remove(filepath.Join(dir, "docker", file)); err != nil {
			t.Fatal(err)
		}
		m := loadSource(t, dir)
		caller, err := topology.TaskNetns(m, "caller.1")
		if err != nil {
			t.Fatal(err)
		}
		unknown := 0
		for _, line := range strings.Split(string(truth), "\n") {
			name, answer, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			want := strings.Fields(answer)
			slices.Sort(want)
			p, err := topology.FindDNSPath(m, topology.DNSQuery{Name: name, From: caller.Name})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case p.Verdict == topology.VerdictUnknown && len(p.Answer) == 0 && !p.Forwarded:
				unknown++
			case p.Verdict == topology.VerdictComplete && slices.Equal(addrStrings(p.Answer), want) && p.Forwarded == (len(want) == 0):
			default:
				var b strings.Builder
				topology.WriteDNSPathText(&b, p)
				t.Errorf("without %s: %s: dockerd answered %v, got:\n%s", file, name, want, b.String())
			}
		}
		if unknown == 0 {
			t.Errorf("without %s: every lookup answered", file)
		}
	}
}

// TestNamesDockerFileMissing: a name not found for want of one of
// docker/*.json says that file's objects were not collected, never that
// Docker names none (an operator would look for a missing service).
func TestNamesDockerFileMissing(t *testing.T) {
	const vm28 = fixturesDir + "/swarm-vm28/collect"
	for _, c := range []struct {
		file, want string
		find       func(*topology.Model) error
	}{
		{"services.json", "Docker's services were not collected", func(m *topology.Model) error { _, err := topology.FindService(m, "web"); return err }},
		{"containers.json", "Docker's containers were not collected", func(m *topology.Model) error { _, err := topology.TaskNetns(m, "caller.1"); return err }},
	} {
		dir := t.TempDir()
		testutil.CopyTree(t, vm28, dir, nil)
		if err := os.Remove(filepath.Join(dir, "docker", c.file)); err != nil {
			t.Fatal(err)
		}
		if err := c.find(loadSource(t, dir)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("without %s: %v; want %q", c.file, err, c.want)
		}
	}
}
