package mesh

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// NetnsPath resolves what `mesh exec` and `Ask` accept as a place: a node
// (its host netns), NODE/FILE (a file in the node's netns directory:
// ingress_sbox, 1-<id>, a task's id), a task name (web.2), client or lan.
func (st *State) NetnsPath(target string) (string, error) {
	switch target {
	case "client":
		return st.Client.Netns, nil
	case "lan":
		return filepath.Join(st.Dir, "lan"), nil
	}
	node, file, sub := strings.Cut(target, "/")
	for _, n := range st.Nodes {
		if n.Name != node {
			continue
		}
		if !sub {
			return n.Host, nil
		}
		if file == "" || strings.ContainsAny(file, "/") || file == "." || file == ".." {
			break
		}
		return filepath.Join(n.NetnsDir, file), nil
	}
	if t, _, ok := st.Task(target); ok {
		return t.Netns, nil
	}
	var nodes []string
	for _, n := range st.Nodes {
		nodes = append(nodes, n.Name)
	}
	return "", fmt.Errorf("mesh %s: no place %q (want client, lan, a node (%s), NODE/NETNS-FILE or a task name)",
		st.Name, target, strings.Join(nodes, ", "))
}

// WriteText renders the state for people: nodes, services, tasks, health
// when known, and how to reach the mesh.
func (st *State) WriteText(w io.Writer) error {
	agent := fmt.Sprintf("agent pid %d", st.AgentPID)
	if st.Health != nil && !st.Health.AgentAlive {
		agent += " dead"
	}
	fmt.Fprintf(w, "mesh %s: %d nodes, load balancing %s, %s (%s)\n", st.Name, len(st.Nodes), lbText(st.LB), agent, st.Phase)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  client\t%s\t%s\n", st.Client.IP, st.Client.Netns)
	for _, n := range st.Nodes {
		gossip := ""
		if n.Gossip != nil {
			gossip = map[bool]string{true: "\tgossip port answering", false: "\tGOSSIP PORT NOT ANSWERING"}[*n.Gossip]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s (netns dir %s)%s\n", n.Name, n.IP, n.Host, n.NetnsDir, gossip)
	}
	tw.Flush()
	for _, s := range st.Services {
		if s.DNSRR() {
			fmt.Fprintf(w, "service %s  %s %d  dnsrr (no VIP, not published)\n", s.Name, s.Proto, s.Target)
		} else {
			fmt.Fprintf(w, "service %s  %s %d -> %d  fwmark %#x  vip %s\n", s.Name, s.Proto, s.Published, s.Target, s.FWMark, s.VIP)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range s.Tasks {
			health := ""
			if t.Answering != nil {
				health = map[bool]string{true: "answering", false: "NOT ANSWERING"}[*t.Answering]
			}
			if t.Resolving != nil {
				health += map[bool]string{true: ", dns answering", false: ", DNS NOT ANSWERING"}[*t.Resolving]
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t.Name, t.Node, t.IP, filepath.Base(t.Netns), health)
		}
		tw.Flush()
	}
	if h := st.Health; h != nil {
		verdict := "healthy"
		if !h.Healthy {
			verdict = "UNHEALTHY"
		}
		fmt.Fprintf(w, "health: %s (agent alive: %v)\n", verdict, h.AgentAlive)
		for _, p := range h.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	return nil
}

// WriteHowTo prints how to use a mesh that just came up.
func (st *State) WriteHowTo(w io.Writer) {
	var published []ServiceState
	for _, s := range st.Services {
		if !s.DNSRR() {
			published = append(published, s)
		}
	}
	if len(st.Nodes) == 0 || len(published) == 0 {
		return
	}
	s, n := published[0], st.Nodes[len(st.Nodes)-1]
	fmt.Fprintln(w, "try:")
	if s.Proto == "tcp" {
		fmt.Fprintf(w, "  meshtrace mesh exec --name %s client -- curl -s %s:%d\n", st.Name, n.IP, s.Published)
		fmt.Fprintf(w, "  meshtrace mesh exec --name %s %s -- curl -s 127.0.0.1:%d\n", st.Name, st.Nodes[0].Name, s.Published)
	}
	fmt.Fprintf(w, "  meshtrace path --mesh %s --node %s --port %d --proto %s\n", st.Name, st.Nodes[0].Name, s.Published, s.Proto)
	fmt.Fprintf(w, "  meshtrace mesh status --name %s\n", st.Name)
	fmt.Fprintf(w, "  meshtrace mesh down --name %s\n", st.Name)
}

func lbText(lb string) string {
	if lb == LBIptables {
		return "iptables (IPVS emulated with statistic/DNAT rules)"
	}
	return lb
}

// WriteList renders `mesh ls`.
func WriteList(w io.Writer, ms []Summary) {
	if len(ms) == 0 {
		fmt.Fprintln(w, "no meshes")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPHASE\tLB\tNODES\tTASKS\tAGENT")
	for _, m := range ms {
		agent := "-"
		switch m.Agent {
		case AgentRunning:
			agent = fmt.Sprint(m.AgentPID)
		case AgentDead:
			agent = fmt.Sprintf("%d dead (no task answers)", m.AgentPID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", m.Name, m.Phase, m.LB, m.Nodes, m.Tasks, agent)
	}
	tw.Flush()
}
