package inspect

import (
	"context"
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// BundleSink is where a bundle's folders and files go: a directory
// (*safefile.OutDir) or a stream (swarm collect's tar). Names are
// slash-separated and relative to the bundle's top.
type BundleSink interface {
	Mkdir(name string) error
	WriteFile(name string, data []byte) error
}

// CollectInProcess is collect without a command: this node read by
// meshtrace's own readers (Live: netlink, nf_tables, IPVS over generic
// netlink, conntrack; Options as Live's, Conntrack forced on) and the
// Docker engine (r, or the local daemon when nil; noDocker skips it),
// written to out as a bundle that Bundle reads back to the same model. It
// is what runs in a FROM-scratch image, which has none of the tools
// Collect runs. The counters are not read (no renderer writes them back).
func CollectInProcess(ctx context.Context, o Options, r DockerReader, noDocker bool, out BundleSink) error {
	o.Conntrack, o.Counters = true, false
	m, err := Live(ctx, o)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	var d *DockerData
	if !noDocker {
		var notes []string
		d, notes = readDockerNoted(ctx, r)
		m.Notes = append(m.Notes, notes...)
	}
	return WriteBundle(out, m, d)
}

// WriteBundle writes the model m (a live read) and the engine's metadata d
// (nil: not collected) as a bundle: netns/<namespace>/ for each namespace
// (namespaceFiles), docker/*.json, NOTES.txt.
func WriteBundle(out BundleSink, m *topology.Model, d *DockerData) error {
	if err := out.Mkdir(BundleNetnsDir); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	taken := map[string]bool{}
	var folders []string
	for _, ns := range m.Namespaces {
		if ns == nil {
			continue
		}
		name := ns.Name
		for n := 2; taken[name]; n++ { // the same file name in two netns directories
			name = fmt.Sprintf("%s~%d", ns.Name, n)
		}
		taken[name] = true
		folders = append(folders, name)
		dir := path.Join(BundleNetnsDir, name)
		if err := out.Mkdir(dir); err != nil {
			return fmt.Errorf("collect: %w", err)
		}
		files := namespaceFiles(ns)
		names := make([]string, 0, len(files))
		for f := range files {
			names = append(names, f)
		}
		sort.Strings(names) // a stream's order does not depend on the map's
		for _, f := range names {
			if err := out.WriteFile(path.Join(dir, f), []byte(files[f])); err != nil {
				return fmt.Errorf("collect: %w", err)
			}
		}
	}
	if d != nil {
		if err := writeDocker(out, d); err != nil {
			return err
		}
	}
	if m.NetnsComplete {
		if err := writeNetnsList(out, folders); err != nil {
			return err
		}
	}
	if notes := bundleNotes(m); len(notes) > 0 {
		if err := out.WriteFile(BundleNotes, []byte(strings.Join(notes, "\n")+"\n")); err != nil {
			return fmt.Errorf("collect: %w", err)
		}
	}
	return nil
}

// writeNetnsList writes NAMESPACES.txt: the folder of every namespace the
// collection found, so that a reader knows the set is whole.
func writeNetnsList(out BundleSink, folders []string) error {
	list := "# every network namespace collect found on the node (its folder under netns/), one a line\n"
	for _, f := range folders {
		list += f + "\n"
	}
	if err := out.WriteFile(BundleNetnsList, []byte(list)); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	return nil
}

// namespaceFiles renders what a namespace of a model holds as the files
// of its bundle folder, each in the format of the command collect runs for
// it, which the bundle reader reads back to the same model: the in-process
// collection's bundle (a FROM-scratch image has none of the tools collect
// runs, only meshtrace's own readers). A part that was not read (nil) has
// no file. The IPsec keys are not in the model: nothing to leave out. The
// counters are not written (a model read for a bundle leaves them unread).
func namespaceFiles(ns *topology.Namespace) map[string]string {
	files := map[string]string{}
	if len(ns.Links) > 0 {
		files[BundleIPAddr] = renderIPAddr(ns)
	}
	if fw := ns.Firewall; fw != nil {
		if len(fw.NotCollected) > 0 { // read from per-table listings: the same
			for _, t := range fw.Tables {
				files[BundleIptablesTable(t.Name)] = renderIptablesSave(&topology.Firewall{Backend: fw.Backend, Tables: []*topology.Table{t}})
			}
		} else {
			files[BundleIptables] = renderIptablesSave(fw)
		}
	}
	if fw := ns.OtherFirewall; fw != nil && len(fw.Tables) > 0 {
		files[BundleIptablesLegacy] = renderIptablesSave(fw)
	}
	if ns.IPVS != nil && ns.IPVS.Available {
		files[BundleIPVS] = renderIPVS(ns.IPVS)
		if t := ns.IPVS.Timeouts; t != nil {
			files[BundleIPVSTimeout] = fmt.Sprintf("Timeout (tcp tcpfin udp): %d %d %d\n", t.TCP, t.TCPFin, t.UDP)
		}
	}
	if ns.Routes != nil {
		files[BundleRoutes] = renderRoutes(ns.Routes)
	}
	if ns.Neighbours != nil {
		files[BundleNeigh] = renderNeighbours(ns.Neighbours)
	}
	if ns.FDB != nil {
		files[BundleFDB] = renderFDB(ns.FDB)
	}
	if ns.Sysctls != nil {
		files[BundleSysctl] = renderSysctls(ns.Sysctls)
	}
	if ns.Sockets != nil {
		files[BundleSockets] = renderSockets(ns.Sockets)
	}
	if ns.Conntrack != nil {
		files[BundleConntrack] = renderConntrack(ns.Conntrack)
	}
	if x := ns.Xfrm; x != nil {
		if x.States != nil {
			files[BundleXfrmState] = renderXfrmStates(x.States)
		}
		if x.Policies != nil {
			files[BundleXfrmPolicy] = renderXfrmPolicies(x.Policies)
		}
	}
	return files
}

// bundleNotes are the lines of NOTES.txt for a model written as a bundle:
// its notes, and, where the kernel has no IPVS, collect's note saying so,
// which the reader turns back into each namespace's IPVS{Available:
// false} (see noIPVS).
func bundleNotes(m *topology.Model) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(strings.ReplaceAll(s, "\n", " ")); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, n := range m.Notes {
		add(n)
	}
	for _, ns := range m.Namespaces {
		if ns.IPVS != nil && !ns.IPVS.Available {
			add(fmt.Sprintf("%s not collected in any namespace: kernel has no IPVS (%s)", BundleIPVS, strings.TrimPrefix(ns.IPVS.Reason, noIPVSPrefix)))
			break
		}
	}
	for _, ns := range m.Namespaces {
		for _, e := range ns.Errors {
			add(fmt.Sprintf("netns %s: %s", ns.Name, e))
		}
	}
	sort.Strings(out)
	return out
}

// renderIPAddr prints the links as `ip -d addr` does. A link whose kind
// was not shown (plain `ip addr`) or only inferred from the wiring prints
// without the details, so the reader infers it again.
func renderIPAddr(ns *topology.Namespace) string {
	var b strings.Builder
	for _, l := range ns.Links {
		name := l.Name
		netnsid, netnsName := "", ""
		if p := l.Peer; p != nil {
			switch {
			case p.NetnsID == -1 && p.Ifname != "":
				name += "@" + p.Ifname
			default:
				name += "@if" + strconv.Itoa(p.Index)
			}
			switch {
			case p.NetnsID >= 0:
				netnsid = " link-netnsid " + strconv.Itoa(p.NetnsID)
			case p.NetnsID == -2 && p.Netns != "": // parse.NetnsIDNamed
				netnsName = " link-netns " + p.Netns
			}
		}
		flags := "BROADCAST,MULTICAST"
		if l.Kind == "loopback" {
			flags = "LOOPBACK"
		}
		if l.Up {
			flags += ",UP,LOWER_UP"
		}
		master := ""
		if l.Master != "" {
			master = " master " + l.Master
		}
		state := "DOWN"
		if l.Up {
			state = "UP"
		}
		fmt.Fprintf(&b, "%d: %s: <%s> mtu %d qdisc noqueue%s state %s group default qlen 1000\n", l.Index, name, flags, l.MTU, master, state)
		detailed := l.Kind != "" && l.KindFrom == ""
		details := ""
		if detailed {
			details = " promiscuity 0 allmulti 0 minmtu 0 maxmtu 0"
		}
		switch {
		case l.Kind == "loopback":
			fmt.Fprintf(&b, "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00%s\n", details)
		case len(l.MAC.HardwareAddr()) == 6:
			fmt.Fprintf(&b, "    link/ether %s brd ff:ff:ff:ff:ff:ff%s%s%s\n", l.MAC, netnsid, netnsName, details)
		default:
			fmt.Fprintf(&b, "    link/none%s%s%s\n", netnsid, netnsName, details)
		}
		if detailed && l.Kind != "loopback" && l.Kind != "device" {
			b.WriteString("    " + l.Kind)
			if v := l.VXLAN; v != nil && l.Kind == "vxlan" {
				fmt.Fprintf(&b, " id %d", v.ID)
				if v.Group.IsValid() {
					fmt.Fprintf(&b, " group %s", v.Group)
				}
				if v.Local.IsValid() {
					fmt.Fprintf(&b, " local %s", v.Local)
				}
				fmt.Fprintf(&b, " srcport 0 0 dstport %d", v.Port)
				if !v.Learning {
					b.WriteString(" nolearning")
				}
				if v.Proxy {
					b.WriteString(" proxy")
				}
			}
			b.WriteString(" \n")
		}
		for _, p := range l.Addrs {
			family := "inet"
			if p.Addr().Is6() {
				family = "inet6"
			}
			fmt.Fprintf(&b, "    %s %s scope global %s\n       valid_lft forever preferred_lft forever\n", family, p, l.Name)
		}
	}
	return b.String()
}

// renderIptablesSave prints the firewall as `iptables-save -c` does.
func renderIptablesSave(fw *topology.Firewall) string {
	var b strings.Builder
	switch fw.Backend {
	case topology.BackendNFTables:
		b.WriteString("# Generated by iptables-save v1.8 (nf_tables), from meshtrace's in-process read\n")
	case topology.BackendLegacy:
		b.WriteString("# Generated by iptables-save v1.8, from meshtrace's in-process read\n")
	}
	for _, t := range fw.Tables {
		fmt.Fprintf(&b, "*%s\n", t.Name)
		for _, c := range t.Chains {
			fmt.Fprintf(&b, ":%s %s [%d:%d]\n", c.Name, c.Policy, c.Packets, c.Bytes)
		}
		for _, c := range t.Chains {
			for _, r := range c.All() {
				if r.HasCounters {
					fmt.Fprintf(&b, "[%d:%d] ", r.Packets, r.Bytes)
				}
				b.WriteString(r.Text)
				b.WriteByte('\n')
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// renderIPVS prints the table as `ipvsadm-save -n` does.
func renderIPVS(ipvs *topology.IPVS) string {
	var b strings.Builder
	for _, s := range ipvs.Services {
		if s.Impl == topology.LBIptables {
			continue // the emulation's: its rules say it
		}
		var svc string
		switch {
		case s.FWMark != 0:
			svc = "-f " + strconv.FormatUint(uint64(s.FWMark), 10)
		default:
			flag := map[string]string{"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}[s.Proto]
			if flag == "" {
				continue
			}
			svc = flag + " " + netip.AddrPortFrom(s.Addr, uint16(s.Port)).String()
		}
		fmt.Fprintf(&b, "-A %s -s %s", svc, s.Scheduler)
		if s.Persistent > 0 {
			fmt.Fprintf(&b, " -p %d", s.Persistent)
		}
		b.WriteByte('\n')
		for _, d := range s.Dests {
			fwd := map[string]string{"masq": "-m", "route": "-g", "tunnel": "-i"}[d.Forward]
			if fwd == "" {
				fwd = "-g"
			}
			fmt.Fprintf(&b, "-a %s -r %s %s -w %d\n", svc, netip.AddrPortFrom(d.Addr, uint16(d.Port)), fwd, d.Weight)
		}
	}
	return b.String()
}

// renderRoutes prints the routes as `ip route show` does.
func renderRoutes(rs []topology.Route) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.DstString())
		if r.Gateway.IsValid() {
			b.WriteString(" via " + r.Gateway.String())
		}
		if r.Dev != "" {
			b.WriteString(" dev " + r.Dev)
		}
		if r.Table != 0 {
			fmt.Fprintf(&b, " table %d", r.Table)
		}
		if r.Src.IsValid() {
			b.WriteString(" src " + r.Src.String())
		}
		b.WriteString(" \n")
	}
	return b.String()
}

// stateWords are a Neigh/FDB state ("stale", "incomplete,failed") as ip
// prints it: each state upper-case.
func stateWords(state string) string {
	if state == "" || state == "none" {
		return ""
	}
	return " " + strings.ToUpper(strings.ReplaceAll(state, ",", " "))
}

// renderNeighbours prints the entries as `ip neigh show` does.
func renderNeighbours(ns []topology.Neigh) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString(n.IP.String())
		if n.Dev != "" {
			b.WriteString(" dev " + n.Dev)
		}
		if n.MAC.IsValid() {
			b.WriteString(" lladdr " + n.MAC.String())
		}
		b.WriteString(stateWords(n.State))
		b.WriteByte('\n')
	}
	return b.String()
}

// renderFDB prints the entries as `bridge fdb show` does.
func renderFDB(fs []topology.FDB) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s dev %s", f.MAC, f.Dev)
		if f.Dst.IsValid() {
			b.WriteString(" dst " + f.Dst.String())
		}
		switch f.State {
		case "reachable", "":
		case "permanent", "stale":
			b.WriteString(" " + f.State)
		case "noarp":
			b.WriteString(" static")
		default:
			nud := 0
			for _, s := range strings.Split(f.State, ",") {
				for i, n := range topology.NeighStates {
					if n == s {
						nud |= 1 << i
					}
				}
			}
			fmt.Fprintf(&b, " state=%#x", nud)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// renderSysctls prints the knobs as `sysctl` does, in key order.
func renderSysctls(s topology.Sysctls) string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, s[k])
	}
	return b.String()
}

// renderSockets prints the listening sockets as `ss -Htuln` does.
func renderSockets(ss []topology.Socket) string {
	var b strings.Builder
	for _, s := range ss {
		state := map[string]string{"tcp": "LISTEN", "udp": "UNCONN"}[s.Proto]
		if state == "" {
			continue
		}
		addr := s.Addr.String()
		if s.Addr.Is6() {
			addr = "[" + addr + "]"
		}
		if s.Addr == netip.IPv6Unspecified() {
			addr = "*"
		}
		fmt.Fprintf(&b, "%s %s 0 4096 %s:%d *:*\n", s.Proto, state, addr, s.Port)
	}
	return b.String()
}

// renderConntrack prints the entries as `conntrack -L` does.
func renderConntrack(cs []topology.Conntrack) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %d %d", c.Proto, protoNumber(c.Proto), c.Timeout)
		if c.State != "" {
			b.WriteString(" " + c.State)
		}
		for _, t := range []topology.Tuple{c.Orig, c.Reply} {
			fmt.Fprintf(&b, " src=%s dst=%s", t.Src, t.Dst)
			if t.SPort != 0 || t.DPort != 0 {
				fmt.Fprintf(&b, " sport=%d dport=%d", t.SPort, t.DPort)
			}
		}
		fmt.Fprintf(&b, " mark=%d", c.Mark)
		if c.Zone != 0 {
			fmt.Fprintf(&b, " zone=%d", c.Zone)
		}
		b.WriteString(" use=1\n")
	}
	return b.String()
}

// renderXfrmStates prints the SAs as `ip -s xfrm state` does, keys hidden.
func renderXfrmStates(states []topology.XfrmState) string {
	var b strings.Builder
	for _, s := range states {
		fmt.Fprintf(&b, "src %s dst %s\n", s.Src, s.Dst)
		fmt.Fprintf(&b, "\tproto %s spi %s reqid %d mode %s\n", s.Proto, s.SPI, s.Reqid, s.Mode)
		fmt.Fprintf(&b, "\treplay-window %d", s.ReplayWindow)
		if len(s.Flags) > 0 {
			b.WriteString(" flag " + strings.Join(s.Flags, " "))
		}
		b.WriteByte('\n')
		writeXfrmMarks(&b, s.Mark, s.OutputMark)
		for _, a := range s.Algos {
			fmt.Fprintf(&b, "\t%s %s <<Keys hidden>>", a.Kind, a.Name)
			if a.KeyBits != 0 {
				fmt.Fprintf(&b, " (%d bits)", a.KeyBits)
			}
			switch a.Kind {
			case topology.AlgoAEAD:
				fmt.Fprintf(&b, " %d", a.ICVBits)
			case topology.AlgoAuthTrunc:
				fmt.Fprintf(&b, " %d", a.TruncBits)
			}
			b.WriteByte('\n')
		}
		if e := s.Encap; e != nil {
			fmt.Fprintf(&b, "\tencap type %s sport %d dport %d addr %s\n", e.Type, e.SPort, e.DPort, e.OA)
		}
		if s.Sel != nil {
			b.WriteString("\tsel " + xfrmSelector(*s.Sel) + "\n")
		}
		if s.IfID != 0 {
			fmt.Fprintf(&b, "\tif_id %#x\n", s.IfID)
		}
		switch s.Dir {
		case topology.SADirIn:
			b.WriteString("\tdir in\n")
		case topology.SADirOut:
			b.WriteString("\tdir out\n")
		}
		if st := s.Stats; st != nil {
			fmt.Fprintf(&b, "\tlifetime current:\n\t  %d(bytes), %d(packets)\n", st.Bytes, st.Packets)
			fmt.Fprintf(&b, "\tstats:\n\t  replay-window %d replay %d failed %d\n", st.OutOfWindow, st.Replay, st.IntegrityFailed)
		}
	}
	return b.String()
}

func writeXfrmMarks(b *strings.Builder, mark, output *topology.XfrmMark) {
	var parts []string
	if mark != nil {
		parts = append(parts, fmt.Sprintf("mark %#x/%#x", mark.Value, mark.Mask))
	}
	if output != nil {
		parts = append(parts, fmt.Sprintf("output-mark %#x/%#x", output.Value, output.Mask))
	}
	if len(parts) > 0 {
		b.WriteString("\t" + strings.Join(parts, " ") + "\n")
	}
}

// xfrmSelector prints a selector as xfrm_selector_print does.
func xfrmSelector(s topology.XfrmSelector) string {
	var b strings.Builder
	fmt.Fprintf(&b, "src %s dst %s", s.Src, s.Dst)
	if s.Proto != 0 {
		fmt.Fprintf(&b, " proto %d", s.Proto)
	}
	if s.SPort != 0 {
		fmt.Fprintf(&b, " sport %d", s.SPort)
	}
	if s.DPort != 0 {
		fmt.Fprintf(&b, " dport %d", s.DPort)
	}
	if s.Dev != "" {
		b.WriteString(" dev " + s.Dev)
	}
	return b.String()
}

// renderXfrmPolicies prints the policies as `ip -s xfrm policy` does.
func renderXfrmPolicies(ps []topology.XfrmPolicy) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(xfrmSelector(p.Sel) + "\n")
		word := "dir"
		if p.Socket {
			word = "socket"
		}
		fmt.Fprintf(&b, "\t%s %s action %s", word, p.Dir, p.Action)
		if p.Index != 0 {
			fmt.Fprintf(&b, " index %d", p.Index)
		}
		fmt.Fprintf(&b, " priority %d", p.Priority)
		if p.Type != "" {
			b.WriteString(" ptype " + p.Type)
		}
		if len(p.Flags) > 0 {
			b.WriteString(" flag " + strings.Join(p.Flags, " "))
		}
		b.WriteByte('\n')
		writeXfrmMarks(&b, p.Mark, nil)
		if p.IfID != 0 {
			fmt.Fprintf(&b, "\tif_id %#x\n", p.IfID)
		}
		for _, t := range p.Tmpls {
			fmt.Fprintf(&b, "\ttmpl src %s dst %s\n\t\tproto %s", t.Src, t.Dst, t.Proto)
			if t.SPI != 0 {
				fmt.Fprintf(&b, " spi %s", t.SPI)
			}
			fmt.Fprintf(&b, " reqid %d mode %s\n", t.Reqid, t.Mode)
			if t.Optional {
				b.WriteString("\t\tlevel use \n")
			} else {
				b.WriteString("\t\tlevel required \n")
			}
		}
	}
	return b.String()
}

// protoNumber is the number of a protocol as topology.ProtoName names it.
func protoNumber(name string) int {
	switch name {
	case "tcp":
		return 6
	case "udp":
		return 17
	case "icmp":
		return 1
	case "sctp":
		return 132
	}
	n, _ := strconv.Atoi(name)
	return n
}
