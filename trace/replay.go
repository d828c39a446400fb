package trace

import (
	"context"
	"iter"
	"slices"
)

// ReplayOptions narrow a replay.
type ReplayOptions struct {
	Proto string // "" = any
	Port  int    // 0 = any
	// PacketHops lists every packet's sightings, not only the first
	// request's and reply's.
	PacketHops bool
	// Options tune correlation (ServerPorts are the plan's and Port).
	Options Options
	// Notes are facts about the reading (the nodes' clocks put on one),
	// given in the Result's notes.
	Notes []string
}

// Replay correlates capture files (src: trace/pcapio's reader), ours or
// tcpdump's, several at once. With env it explains rewrites from the
// model: src's points must then be known before the first frame (read
// once through, attributed with Survey.Attribute). The stream's Done
// carries the first file error.
func Replay(ctx context.Context, src Source, env *Env, o ReplayOptions) iter.Seq[Event] {
	cfg := Config{Proto: o.Proto, Port: o.Port, PacketHops: o.PacketHops, Options: o.Options, Notes: o.Notes}
	points := src.Points()
	env = nameSource(env, points)
	cfg.Env = env
	if env != nil {
		if plan, err := Plan(env, nil); err == nil {
			cfg.Options.ServerPorts = plan.Filter.Ports
			cfg.Routes = mapRoutes(plan, points)
		}
	}
	if o.Port > 0 && !slices.Contains(cfg.Options.ServerPorts, uint16(o.Port)) {
		cfg.Options.ServerPorts = append(cfg.Options.ServerPorts, uint16(o.Port))
	}
	if o.Proto != "" || o.Port != 0 {
		cfg.Want = func(c *Conn) bool { return wanted(c, o) }
	}
	return Stream(ctx, src, cfg)
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
func wanted(c *Conn, o ReplayOptions) bool {
	if o.Proto != "" && ProtoName(c.Proto) != o.Proto {
		return false
	}
	if o.Port == 0 {
		return true
	}
	for _, lp := range c.Packets {
		for i := range lp.Frames {
			p := &lp.Frames[i].Pkt
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
