package ports

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// Entry is one thing whose path can be drawn: a published port, or a
// service VIP called from a task (east-west).
type Entry struct {
	// Query is what topology.FindPath is asked.
	Query topology.Query
	// Service is the Docker service's name when known.
	Service string
	FWMark  uint32
	// Backends are the real servers' addresses.
	Backends []netip.Addr
	Complete bool
	// Unknown: part of the path depends on data that was not collected.
	Unknown bool
	// Clients are the namespaces an east-west call can start from (the
	// first is in Query.Netns); empty for published ports. Labels names
	// them by Docker task when known.
	Clients []string
	Labels  map[string]string
}

// From names the namespace an east-west call starts from.
func (e Entry) From() string {
	if l := e.Labels[e.Query.Netns]; l != "" {
		return l
	}
	return e.Query.Netns
}

// state is the path's verdict as the lists show it.
func (e Entry) state() string {
	switch {
	case e.Unknown:
		return "? unknown"
	case !e.Complete:
		return ui.MarkLost + " BROKEN"
	}
	return ui.MarkOK + " complete"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// VIP reports whether the entry is an east-west service VIP.
func (e Entry) VIP() bool { return e.Query.VIP.IsValid() }

// Title names the entry: "tcp/8080" or "VIP 10.0.1.5".
func (e Entry) Title() string {
	if e.VIP() {
		return "VIP " + e.Query.VIP.String()
	}
	return fmt.Sprintf("%s/%d", e.Query.Proto, e.Query.Port)
}

// Build lists a model's published ports and service VIPs with their path
// summaries. It evaluates every path: call it off the UI goroutine.
func Build(m *topology.Model) []Entry {
	if m == nil {
		return nil
	}
	var out []Entry
	for _, p := range topology.PublishedPorts(m) {
		e := Entry{Query: topology.Query{Proto: p.Proto, Port: p.Port}, FWMark: p.FWMark, Backends: p.Backends, Complete: p.Complete, Unknown: p.Unknown}
		e.Service = serviceForPort(m, p.Proto, p.Port)
		out = append(out, e)
	}
	for _, v := range topology.ServiceVIPs(m) {
		if len(v.Clients) == 0 {
			continue
		}
		e := Entry{Query: topology.Query{Proto: "tcp", VIP: v.VIP, Netns: v.Clients[0]}, Clients: v.Clients, Service: v.Service, Labels: map[string]string{}}
		for _, c := range v.Clients {
			if ns := m.Lookup(c); ns != nil && ns.Docker != nil && ns.Docker.Task != "" {
				e.Labels[c] = ns.Docker.Task
			}
		}
		if p, err := topology.FindPath(m, e.Query); err == nil {
			e.Complete, e.Unknown = p.Complete, p.Verdict == topology.VerdictUnknown
			for _, h := range p.Hops {
				if h.Kind == topology.HopIPVS {
					e.FWMark = h.FWMark
				}
			}
			for _, b := range p.Backends {
				e.Backends = append(e.Backends, b.IP)
			}
		}
		out = append(out, e)
	}
	return out
}

func serviceForPort(m *topology.Model, proto string, port int) string {
	if m.Docker == nil {
		return ""
	}
	for _, s := range m.Docker.Services {
		for _, p := range s.Ports {
			if p.Published == port && strings.EqualFold(p.Proto, proto) {
				return s.Name
			}
		}
	}
	return ""
}

// joinAddrs joins addresses as strings.Join joins strings.
func joinAddrs(as []netip.Addr, sep string) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, sep)
}
