package trace

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/meshtrace/meshtrace/topology"
)

// Tables reads a namespace's conntrack and IPVS connection tables, for
// the cross-check after a capture.
type Tables interface {
	Conntrack(netnsPath string) ([]topology.Conntrack, error)
	// IPVSConns returns nil, nil when the kernel has no IPVS.
	IPVSConns(netnsPath string) ([]IPVSConn, error)
}

// Config is one live trace.
type Config struct {
	Env    *Env
	Client *Client // capture in the client's namespace too
	Probe  *Probe  // make the traffic
	Live   LiveOptions
	Opener Opener // nil = AFPacket{}
	Tables Tables // nil = Kernel{}
	// PacketHops lists every packet's sightings in the result.
	PacketHops bool
	// Pcap receives the capture as pcapng when set.
	Pcap io.Writer
}

// Run captures, correlates and explains.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	env := cfg.Env
	plan, err := Plan(env, cfg.Client)
	if err != nil {
		return nil, err
	}
	op := cfg.Opener
	if op == nil {
		op = AFPacket{}
	}
	lo := cfg.Live
	lo.Correlate.ServerPorts = plan.Filter.Ports
	if cfg.Probe != nil {
		pr := *cfg.Probe
		lo.Probe = pr.Run
	}
	lo.KeepData = lo.KeepData || cfg.Pcap != nil
	lc, err := Live(ctx, plan, op, lo)
	if err != nil {
		return nil, err
	}
	lc.Sort()
	conns := Correlate(lc.Frames, lo.Correlate)
	a := &Analysis{Env: env, Points: lc.Points, Routes: plan.Routes, Frames: lc.Frames, PacketHops: cfg.PacketHops}
	res := &Result{Proto: env.Proto, Port: env.Port, Source: env.Nodes[0].Model.Source, Points: lc.Stats,
		Probes: lc.Probes, Frames: len(lc.Frames), Ignored: lc.Ignored, Notes: plan.Notes}
	res.Notes = append(res.Notes, fmt.Sprintf("capture stopped: %s; filter: %s ports %s%s", lc.Stopped,
		ProtoName(plan.Filter.Proto), portsString(plan.Filter.Ports), map[bool]string{true: " and vxlan", false: ""}[plan.Filter.VXLAN]))
	tables := cfg.Tables
	if tables == nil {
		tables = Kernel{}
	}
	a.Conntrack, a.IPVS, res.Notes = readTables(tables, lc.Points, res.Notes)
	if cfg.Pcap != nil {
		nums, err := WritePcapng(cfg.Pcap, env.Primary(), &lc.Capture, FrameComments(&lc.Capture, conns, env.Primary()))
		if err != nil {
			return nil, err
		}
		a.FrameNum = nums
	}
	res.Flows = a.Flows(conns)
	return res, nil
}

// readTables reads conntrack and IPVS connections once per namespace of
// the capture points.
func readTables(t Tables, points []Point, notes []string) (map[string][]topology.Conntrack, map[string][]IPVSConn, []string) {
	ct := map[string][]topology.Conntrack{}
	vs := map[string][]IPVSConn{}
	done := map[string]bool{}
	for _, p := range points {
		k := nsKey(p.Node, p.Netns)
		if done[k] || p.Path == "" {
			continue
		}
		done[k] = true
		if es, err := t.Conntrack(p.Path); err != nil {
			if !slices.Contains(notes, err.Error()) { // a missing module says so once
				notes = append(notes, err.Error())
			}
		} else {
			ct[k] = es
		}
		if es, err := t.IPVSConns(p.Path); err != nil {
			notes = append(notes, err.Error())
		} else if es != nil {
			vs[k] = es
		}
	}
	return ct, vs, notes
}

// Sort orders frames (and their bytes) by time.
func (c *Capture) Sort() {
	if sort.SliceIsSorted(c.Frames, func(i, j int) bool { return c.Frames[i].TS < c.Frames[j].TS }) {
		return
	}
	idx := make([]int, len(c.Frames))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return c.Frames[idx[i]].TS < c.Frames[idx[j]].TS })
	frames := make([]Frame, len(c.Frames))
	for i, j := range idx {
		frames[i] = c.Frames[j]
	}
	c.Frames = frames
	if len(c.Data) == len(idx) {
		data := make([][]byte, len(idx))
		for i, j := range idx {
			data[i] = c.Data[j]
		}
		c.Data = data
	}
}

// ReplayOptions narrow a replay.
type ReplayOptions struct {
	Proto string // "" = any
	Port  int    // 0 = any
	// PacketHops lists every packet's sightings, not only the first
	// request's and reply's.
	PacketHops bool
}

// Replay correlates capture files: ours (pcapng, one interface per
// point), tcpdump's (pcap/pcapng, one interface or -i any), several at
// once. With env it maps foreign captures to namespaces and explains
// rewrites from the model. A bad file gives its error in Result.Error
// (and the returned error) with the flows read so far.
func Replay(files []string, env *Env, o ReplayOptions) (*Result, error) {
	rd := &Reader{}
	var firstErr error
	for _, f := range files {
		if err := rd.ReadFile(f); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return Analyse(rd, env, o, firstErr)
}

// Analyse correlates what a Reader read; readErr (the first file error)
// is carried into the result. Files without one frame to analyse are an
// error too (Reader.Nothing), never "0 flows".
func Analyse(rd *Reader, env *Env, o ReplayOptions, readErr error) (*Result, error) {
	if readErr == nil {
		readErr = rd.Nothing()
	}
	c := &rd.Capture
	env = nameSource(env, c.Points)
	Attribute(c, env)
	c.Sort()
	co := Options{}
	var routes []Route
	if env != nil {
		if plan, err := Plan(env, nil); err == nil {
			co.ServerPorts = plan.Filter.Ports
			routes = mapRoutes(plan, c.Points)
		}
	}
	if o.Port > 0 && !slices.Contains(co.ServerPorts, uint16(o.Port)) {
		co.ServerPorts = append(co.ServerPorts, uint16(o.Port))
	}
	conns := Correlate(c.Frames, co)
	conns = slices.DeleteFunc(conns, func(cn *Conn) bool { return !wanted(c.Frames, cn, o) })
	a := &Analysis{Env: env, Points: c.Points, Routes: routes, Frames: c.Frames, PacketHops: o.PacketHops}
	res := &Result{Proto: o.Proto, Port: o.Port, Flows: a.Flows(conns), Frames: len(c.Frames), Ignored: rd.Ignored}
	counts := make([]int, len(c.Points))
	for i := range c.Frames {
		counts[c.Frames[i].Point]++
	}
	for i, p := range c.Points {
		res.Points = append(res.Points, PointStat{Point: p, Frames: counts[i]})
	}
	if env != nil {
		res.Source = env.Nodes[0].Model.Source
	}
	if len(conns) > 0 {
		if res.Proto == "" {
			res.Proto = ProtoName(conns[0].Proto)
		}
		if res.Port == 0 {
			res.Port = int(conns[0].Client.DPort)
		}
	}
	if readErr != nil {
		res.Error = readErr.Error()
	}
	return res, readErr
}

// nameSource gives a one-node source without a node name (a bundle, this
// host) the name of the node the capture was made on, so the points of
// trace's pcapng (which name their node) map onto it: the node of the
// first point that is not the client's.
func nameSource(env *Env, points []Point) *Env {
	if env == nil || len(env.Nodes) != 1 || env.Nodes[0].Name != "" {
		return env
	}
	for _, p := range points {
		if p.Netns != "client" && p.Node != "" {
			e, n := *env, *env.Nodes[0]
			n.Name = p.Node
			e.Nodes = []*Node{&n}
			return &e
		}
	}
	return env
}

// wanted applies the replay's protocol and port filter: a flow matches a
// port when any request sighting is addressed to it.
func wanted(frames []Frame, c *Conn, o ReplayOptions) bool {
	if o.Proto != "" && ProtoName(c.Proto) != o.Proto {
		return false
	}
	if o.Port == 0 {
		return true
	}
	for _, lp := range c.Packets {
		for _, fi := range lp.Frames {
			p := &frames[fi].Pkt
			if (!lp.Reply && int(p.DPort) == o.Port) || (lp.Reply && int(p.SPort) == o.Port) {
				return true
			}
		}
	}
	return false
}

// mapRoutes translates a plan's routes onto the points of files (by
// node, netns and interface name), dropping steps no file saw.
func mapRoutes(plan *CapturePlan, points []Point) []Route {
	idx := map[[3]string]int{}
	for i, p := range points {
		idx[[3]string{p.Node, p.Netns, p.Ifname}] = i
	}
	var out []Route
	for _, r := range plan.Routes {
		nr := Route{Backend: r.Backend, Node: r.Node}
		for _, st := range r.Steps {
			p := plan.Points[st.Point]
			if i, ok := idx[[3]string{p.Node, p.Netns, p.Ifname}]; ok {
				nr.Steps = append(nr.Steps, Step{i, st.Dir})
			}
		}
		out = append(out, nr)
	}
	return out
}
