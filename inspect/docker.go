package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"sort"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/meshtrace/meshtrace/topology"
)

// Swarm's container labels.
const (
	labelServiceName = "com.docker.swarm.service.name"
	labelTaskName    = "com.docker.swarm.task.name"
	labelTaskID      = "com.docker.swarm.task.id"
)

// DockerData is what the engine said, in its own API types: what Collect
// writes to docker/*.json, and what those files decode to.
type DockerData struct {
	Networks   []network.Inspect
	Containers []container.InspectResponse
	// Services is nil when they were not available (a node that is not a
	// swarm manager cannot list them); Notes says why.
	Services []swarm.Service
	Notes    []string
}

// DockerFromJSON reads what `docker network inspect`, `docker inspect`
// (containers) and `docker service inspect` print: JSON arrays of the
// engine's API objects. A nil or empty input means that part was not
// collected; when all three are, the result is nil.
func DockerFromJSON(networks, containers, services []byte) (*topology.DockerMeta, error) {
	return dockerMetaFromJSON(
		jsonInput{"networks", networks},
		jsonInput{"containers", containers},
		jsonInput{"services", services},
	)
}

// jsonInput is one JSON document and the name errors give it (a file
// path in a bundle).
type jsonInput struct {
	name string
	data []byte
}

// dockerDataFromJSON decodes the networks, containers and services
// documents, in that order.
func dockerDataFromJSON(nets, ctrs, svcs jsonInput) (*DockerData, error) {
	var d DockerData
	if found, err := decodeDocs([3]jsonInput{nets, ctrs, svcs}, [3]any{&d.Networks, &d.Containers, &d.Services}); !found || err != nil {
		return nil, err
	}
	return &d, nil
}

// decodeDocs decodes each document that holds something (decodeArray)
// into its dst; found says one did.
func decodeDocs(docs [3]jsonInput, dsts [3]any) (found bool, err error) {
	for i, in := range docs {
		if len(bytes.TrimSpace(in.data)) == 0 {
			continue
		}
		found = true
		if err := decodeArray(in.data, dsts[i]); err != nil {
			return true, fmt.Errorf("docker %s: %w", in.name, jsonError(in.data, err))
		}
	}
	return found, nil
}

// decodeArray decodes a JSON array into dst (a pointer to a slice), or a
// single object as a one-element array: some tools print one object. A
// stream of them (`docker network inspect --format '{{json .}}' A B`
// prints one object a line; several commands' arrays pasted in one file)
// is their elements in order.
func decodeArray(data []byte, dst any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return errors.New("no JSON")
	}
	orig := data
	if trimmed[0] == '{' {
		data = append(append([]byte{'['}, trimmed...), ']')
	}
	// Docker before API 1.44 prints an absent IP as Go's "<nil>" (e.g. the
	// VIP of a dnsrr service in `docker network inspect -v`), which the
	// netip.Addr fields of today's API types refuse. Blank it to "" (the
	// zero address), padded so byte offsets in errors stay true.
	if bytes.Contains(data, []byte(`"<nil>"`)) {
		data = bytes.ReplaceAll(data, []byte(`"<nil>"`), []byte(`""     `))
	}
	if fastDecode(data, dst) {
		return nil
	}
	// The standard decoder is the reference: what the fast one refuses
	// (or fails on) is decoded again by it, for its verdict and for the
	// offsets of its errors (jsonError).
	reflect.ValueOf(dst).Elem().SetZero()
	dec := json.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON array")
	}
	if err != nil {
		return decodeStream(orig, dst, err)
	}
	return nil
}

// decodeStream decodes data as a stream of JSON arrays or objects, when it
// is one, appending their elements to dst; else it returns err, the
// single document's error.
func decodeStream(data []byte, dst any, err error) error {
	vals, offs := jsonValues(data)
	if len(vals) < 2 {
		return err
	}
	out := reflect.ValueOf(dst).Elem()
	out.SetZero()
	for i, v := range vals {
		part := reflect.New(out.Type())
		if err := decodeArray(v, part.Interface()); err != nil {
			// The error's offset in data, not in the value (decoded as
			// "[" + v + "]" when v is an object); %v, not %w: the
			// caller's jsonError must not place it again.
			off := int64(offs[i])
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			switch {
			case errors.As(err, &se):
				off += se.Offset
			case errors.As(err, &te):
				off += te.Offset
			}
			if v[0] == '{' && off > int64(offs[i]) {
				off--
			}
			line, col := lineCol(data, min(off, int64(len(data))))
			return fmt.Errorf("line %d col %d (JSON value %d of the file): %v", line, col, i+1, err)
		}
		out.Set(reflect.AppendSlice(out, part.Elem()))
	}
	return nil
}

// jsonValues splits data into its top-level JSON values and their
// offsets, when it is a well-formed stream of more than one; else nil.
func jsonValues(data []byte) (vals [][]byte, offs []int) {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if err == io.EOF {
				return vals, offs
			}
			return nil, nil
		}
		if len(vals) == 0 && !dec.More() {
			return nil, nil // one value: the caller's path
		}
		for start < int64(len(data)) && (data[start] == ' ' || data[start] == '\n' || data[start] == '\t' || data[start] == '\r') {
			start++
		}
		vals, offs = append(vals, raw), append(offs, int(start))
	}
}

// fastDecode decodes data into dst with github.com/goccy/go-json, four times
// faster than encoding/json on the engine's objects: a swarm's node holds
// `docker network inspect --verbose` of every task of the swarm, and `swarm
// check` reads one per node. It reports false, leaving dst to the standard
// decoder, on any error or panic. FuzzDockerDecoders holds it to the
// standard decoder's results.
func fastDecode(data []byte, dst any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return gojson.Unmarshal(data, dst) == nil
}

// jsonError adds the line and column to a JSON decoding error.
func jsonError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	line, col := lineCol(data, off)
	return fmt.Errorf("line %d col %d: %w", line, col, err)
}

// lineCol is the line and column (from 1) of byte offset off of data.
func lineCol(data []byte, off int64) (line, col int) {
	return 1 + bytes.Count(data[:off], []byte{'\n'}), int(off) - bytes.LastIndexByte(data[:off], '\n')
}

// Meta converts the engine's objects to the model's Docker metadata.
func (d *DockerData) Meta() *topology.DockerMeta {
	if d == nil {
		return nil
	}
	// What was read, if empty, stays non-nil: nil is "not collected"
	// (a worker lists no services), which answers nothing.
	var nets []netMeta
	if d.Networks != nil {
		nets = make([]netMeta, len(d.Networks))
		for i, n := range d.Networks {
			nets[i] = netMetaOf(n)
		}
	}
	var ctrs []ctrMeta
	if d.Containers != nil {
		ctrs = make([]ctrMeta, len(d.Containers))
		for i, c := range d.Containers {
			ctrs[i] = ctrMetaOf(c)
		}
	}
	return meta(nets, ctrs, d.Services)
}

// meta converts the engine's objects (as far as it reads them) to the
// model's Docker metadata; a nil slice is what was not collected.
func meta(nets []netMeta, ctrs []ctrMeta, svcs []swarm.Service) *topology.DockerMeta {
	m := &topology.DockerMeta{
		Networks:   emptyOrNil[topology.DockerNetwork](nets != nil),
		Containers: emptyOrNil[topology.DockerContainer](ctrs != nil),
		Services:   emptyOrNil[topology.DockerService](svcs != nil),
	}
	for _, n := range nets {
		m.Networks = append(m.Networks, dockerNetwork(n))
	}
	for _, c := range ctrs {
		m.Containers = append(m.Containers, dockerContainer(c))
	}
	for _, s := range svcs {
		m.Services = append(m.Services, dockerService(s))
	}
	sort.SliceStable(m.Networks, func(i, j int) bool { return m.Networks[i].Name < m.Networks[j].Name })
	sort.SliceStable(m.Containers, func(i, j int) bool { return m.Containers[i].Name < m.Containers[j].Name })
	sort.SliceStable(m.Services, func(i, j int) bool { return m.Services[i].Name < m.Services[j].Name })
	return m
}

// emptyOrNil is an empty slice when read, else nil.
func emptyOrNil[T any](read bool) []T {
	if read {
		return []T{}
	}
	return nil
}

func dockerNetwork(n netMeta) topology.DockerNetwork {
	out := topology.DockerNetwork{
		ID:      n.ID,
		Name:    n.Name,
		Driver:  n.Driver,
		Scope:   n.Scope,
		Ingress: n.Ingress,
	}
	_, out.Encrypted = n.Options["encrypted"]
	for _, c := range n.IPAM.Config {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
			out.Subnet, out.Gateway = c.Subnet, c.Gateway
			break
		}
	}
	for key, ep := range n.Containers {
		var addr netip.Addr
		switch {
		case ep.IPv4Address.IsValid():
			addr = ep.IPv4Address.Addr()
		case ep.IPv6Address.IsValid():
			addr = ep.IPv6Address.Addr()
		default:
			continue
		}
		if out.Endpoints == nil {
			out.Endpoints = map[string]netip.Addr{}
		}
		out.Endpoints[endpointKey(key, ep.Name)] = addr
	}
	for _, p := range n.Peers {
		if p.IP.IsValid() {
			out.Peers = append(out.Peers, topology.DockerPeer{Name: p.Name, IP: p.IP})
		}
	}
	// --verbose: every node's tasks, by service. The "" service holds the
	// networks' own endpoints (ingress-endpoint, lb-NAME), not tasks.
	svcs := make([]string, 0, len(n.Services))
	for name := range n.Services {
		if name != "" {
			svcs = append(svcs, name)
		}
	}
	sort.Strings(svcs)
	for _, svc := range svcs {
		for _, t := range n.Services[svc].Tasks {
			if !t.EndpointIP.IsValid() {
				continue
			}
			out.Tasks = append(out.Tasks, topology.DockerTask{
				Name: taskName(t.Name, ""), Service: svc, IP: t.EndpointIP, Node: hostIP(t.Info.HostIP)})
		}
	}
	return out
}

// hostIP reads a task's "Host IP" (the node it runs on); the zero
// address when it is not one.
func hostIP(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// endpointKey names an endpoint of `docker network inspect`'s Containers:
// the container's name for a container (keyed by its 64-hex ID), the key
// itself for the sandboxes dockerd makes ("ingress-sbox", "lb-NAME").
func endpointKey(key, name string) string {
	if isHexID(key) && name != "" {
		return name
	}
	return key
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

func dockerContainer(c ctrMeta) topology.DockerContainer {
	out := topology.DockerContainer{
		ID:   c.ID,
		Name: strings.TrimPrefix(c.Name, "/"),
	}
	if c.Config != nil {
		out.Service = c.Config.Labels[labelServiceName]
		out.Task = taskName(c.Config.Labels[labelTaskName], c.Config.Labels[labelTaskID])
	}
	if ns := c.NetworkSettings; ns != nil {
		out.SandboxKey = ns.SandboxKey
		for name, ep := range ns.Networks {
			if ep == nil || !ep.IPAddress.IsValid() {
				continue
			}
			if out.Networks == nil {
				out.Networks = map[string]netip.Addr{}
			}
			out.Networks[name] = ep.IPAddress
		}
	}
	return out
}

// taskName turns the task-name label "web.1.<taskid>" into "web.1" (a
// global service's task is "web.<nodeid>.<taskid>" → "web.<nodeid>").
func taskName(label, id string) string {
	if label == "" {
		return ""
	}
	if id != "" && strings.HasSuffix(label, "."+id) {
		return strings.TrimSuffix(label, "."+id)
	}
	if i := strings.LastIndexByte(label, '.'); i > 0 && strings.Count(label, ".") >= 2 {
		return label[:i]
	}
	return label
}

func dockerService(s swarm.Service) topology.DockerService {
	out := topology.DockerService{ID: s.ID, Name: s.Spec.Name}
	switch {
	case s.Spec.EndpointSpec != nil && s.Spec.EndpointSpec.Mode != "":
		out.EndpointMode = string(s.Spec.EndpointSpec.Mode)
	case s.Endpoint.Spec.Mode != "":
		out.EndpointMode = string(s.Endpoint.Spec.Mode)
	}
	for _, v := range s.Endpoint.VirtualIPs {
		if !v.Addr.IsValid() {
			continue
		}
		if out.VIPs == nil {
			out.VIPs = map[string]netip.Prefix{}
		}
		out.VIPs[v.NetworkID] = v.Addr
	}
	// The runtime ports carry the published port dockerd picked when the
	// spec left it to it; the spec's ports are the fallback.
	ports := s.Endpoint.Ports
	if len(ports) == 0 && s.Spec.EndpointSpec != nil {
		ports = s.Spec.EndpointSpec.Ports
	}
	for _, p := range ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		out.Ports = append(out.Ports, topology.DockerPort{
			Proto:     proto,
			Published: int(p.PublishedPort),
			Target:    int(p.TargetPort),
			Mode:      string(p.PublishMode),
		})
	}
	return out
}
