package inspect

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/topology"
)

// The files of a bundle directory (see Bundle).
const (
	BundleNetnsDir      = "netns"
	BundleHost          = "host"
	BundleIPAddr        = "ip-addr.txt"
	BundleIptables      = "iptables-save.txt"
	BundleIPVS          = "ipvsadm.txt"
	BundleIPVSTimeout   = "ipvsadm-timeout.txt"
	BundleRoutes        = "ip-route.txt"
	BundleNeigh         = "ip-neigh.txt"
	BundleFDB           = "bridge-fdb.txt"
	BundleSysctl        = "sysctl.txt"
	BundleSockets       = "ss.txt"
	BundleConntrack     = "conntrack.txt"
	BundleDockerDir     = "docker"
	BundleNetworksJSON  = "networks.json"
	BundleContainerJSON = "containers.json"
	BundleServicesJSON  = "services.json"
	// BundleNotes holds facts about the collection, one a line (what was
	// not collected and why); they become Model.Notes.
	BundleNotes = "NOTES.txt"
	// BundleNetnsList lists every namespace the collection found, one
	// name a line ('#' comments), so a reader knows the set is whole.
	BundleNetnsList = "NAMESPACES.txt"
)

// Bundle reads a bundle directory, the layout `meshtrace collect` writes
// and a user can assemble by hand on a broken node:
//
//	DIR/netns/host/…           the root namespace (Namespace "host")
//	DIR/netns/<name>/…         one folder per netns, named like its file
//	    ip-addr.txt            `ip addr` or `ip -d addr`
//	    iptables-save.txt      `iptables-save` or `iptables-save -c`
//	    iptables-TABLE.txt     instead, per table: `iptables -t TABLE -S [-v]` or
//	                           `iptables -t TABLE -L -n -v [-x] [--line-numbers]` (see readBundleFirewall)
//	    ipvsadm.txt            `ipvsadm-save -n`, `ipvsadm -Ln`, `ipvsadm -Ln --stats` or `ipvsadm -Ln --rate`
//	    ipvsadm-timeout.txt    `ipvsadm -L --timeout` (optional)
//	    ip-route.txt           `ip -4 route show table main` (optional)
//	    ip-neigh.txt           `ip -4 neigh show nud all` (optional)
//	    bridge-fdb.txt         `bridge fdb show` (optional)
//	    sysctl.txt             `sysctl` of the knobs meshtrace reads, or `sysctl -a` (optional)
//	    ss.txt                 `ss -Htuln`, or `netstat -tuln` (optional)
//	    conntrack.txt          `conntrack -L` (optional)
//	    iptables-legacy-save.txt, ip-xfrm-state.txt, ip-xfrm-policy.txt, snmp.txt, netstat.txt,
//	    nf_conntrack-stat.txt, ip-stats.txt, ipvsadm-stats.txt (optional; see readBundleExtra)
//	DIR/docker/networks.json   `docker network inspect …` (optional)
//	DIR/docker/containers.json `docker inspect <containers>` (optional)
//	DIR/docker/services.json   `docker service inspect …` (optional)
//	DIR/NOTES.txt              notes of the collection (optional)
//	DIR/NAMESPACES.txt         every namespace collect found, one a line (optional; see readNetnsList)
//
// A missing file means "not collected", never "empty": a nil Firewall,
// IPVS, IPVS.Timeouts, Routes, Neighbours, FDB, Sysctls, Sockets or
// Conntrack, and for ip-addr.txt no links and an error on the namespace.
// The optional files give the namespace what the live reader reads (see
// readBundleState): only the sysctls it reads are kept, only the FDB
// entries it keeps. A file that does not parse fails the read with the
// parser's error, which names the file (under DIR) and the line; a line of
// the optional files that is not understood is an error of the namespace,
// naming file and line. Namespaces come host first, then by name; veth
// peers are resolved and docker/*.json read into Model.Docker. Attaching
// that to the namespaces and their roles are left to the loading path
// (package source: topology.AnnotateDocker, topology.Classify).
func Bundle(dir string) (*topology.Model, error) { return BundleWith(dir, BundleOptions{}) }

// BundleOptions select what BundleWith reads of a bundle.
type BundleOptions struct {
	// Skip, when set, names the files of a namespace folder (netns, its
	// folder's name; file, a file in it) not to read: the model has what
	// they hold as not collected (nil), as if the folder did not hold
	// them. A reader that needs only part of each namespace (`swarm
	// check`) skips the rest; it must not take what it skipped for
	// "not collected" in what it reports.
	Skip func(netns, file string) bool
}

// BundleWith is Bundle, reading what o selects.
func BundleWith(dir string, o BundleOptions) (*topology.Model, error) {
	b, err := safefile.OpenDir(dir, safefile.MaxFile)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	defer b.Close()
	hostDir := path.Join(BundleNetnsDir, BundleHost)
	if st, err := b.Stat(hostDir); err != nil {
		if flatBundle(b) {
			return flatHost(b, dir, o)
		}
		return nil, fmt.Errorf("bundle %s: no host namespace (%s/, or the host's files at the top): %w", dir, hostDir, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("bundle %s: %s is not a directory", dir, b.Join(hostDir))
	}
	ents, err := b.ReadDir(BundleNetnsDir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	names := []string{BundleHost}
	for _, e := range ents {
		n := e.Name()
		if n == BundleHost {
			continue
		}
		if !e.IsDir() { // a link (to a folder inside the bundle?) or a file: look
			st, err := b.Stat(path.Join(BundleNetnsDir, n))
			if err != nil {
				return nil, fmt.Errorf("bundle %s: %w", dir, err)
			}
			if !st.IsDir() {
				continue
			}
		}
		names = append(names, n)
	}
	sort.Strings(names[1:])

	m := &topology.Model{Source: "bundle:" + dir}
	var fwNotes []string
	for _, name := range names {
		ns, notes, err := readBundleNetns(b, path.Join(BundleNetnsDir, name), name, o.Skip)
		if err != nil {
			return nil, err
		}
		m.Namespaces = append(m.Namespaces, ns)
		fwNotes = append(fwNotes, notes...)
	}
	if m.Notes, err = readNotes(b, BundleNotes); err != nil {
		return nil, err
	}
	m.Notes = append(m.Notes, fwNotes...)
	complete, notes, err := readNetnsList(b, names)
	if err != nil {
		return nil, err
	}
	m.NetnsComplete = complete
	m.Notes = append(m.Notes, notes...)
	return finishBundle(b, m)
}

// finishBundle reads what a bundle holds beside its namespaces into m
// (collect's IPVS finding, docker/*.json) and resolves the veth peers.
func finishBundle(b *safefile.Dir, m *topology.Model) (*topology.Model, error) {
	noIPVS(m)
	d, dnotes, err := readBundleDocker(b, BundleDockerDir, m.Notes)
	if err != nil {
		return nil, err
	}
	m.Docker = d
	m.Notes = append(m.Notes, dnotes...)
	topology.ResolvePeers(m)
	return m, nil
}

// flatBundle reports whether the bundle has no netns/ folder but holds a
// namespace's files at its top: the host's outputs saved into one folder
// by hand (ip addr > ip-addr.txt; iptables-save > iptables-save.txt).
func flatBundle(b *safefile.Dir) bool {
	if _, err := b.Stat(BundleNetnsDir); err == nil {
		return false
	}
	ents, err := b.ReadDir(".")
	if err != nil {
		return false
	}
	for _, e := range ents {
		switch n := e.Name(); {
		case n == BundleIPAddr, n == BundleIptables, n == BundleIPVS, n == BundleRoutes,
			strings.HasPrefix(n, "iptables-") && strings.HasSuffix(n, ".txt"):
			return true
		}
	}
	return false
}

// flatHost reads a flat bundle (flatBundle): its top folder is the host
// namespace, the only one; docker/ and NOTES.txt are read as in any bundle.
// A note says so: what the other namespaces hold was not collected.
func flatHost(b *safefile.Dir, dir string, o BundleOptions) (*topology.Model, error) {
	ns, fwNotes, err := readBundleNetns(b, ".", BundleHost, o.Skip)
	if err != nil {
		return nil, err
	}
	m := &topology.Model{Source: "bundle:" + dir, Namespaces: []*topology.Namespace{ns}}
	if m.Notes, err = readNotes(b, BundleNotes); err != nil {
		return nil, err
	}
	m.Notes = append(m.Notes, fmt.Sprintf("the bundle holds one namespace's files at its top, read as the host's: no other namespace (ingress_sbox, the overlays, the tasks) was collected; put them under %s/<name>/", BundleNetnsDir))
	m.Notes = append(m.Notes, fwNotes...)
	return finishBundle(b, m)
}

// noIPVS carries collect's finding that the kernel had no IPVS into the
// model, so the bundle reads back to the live answer: namespaces without
// ipvsadm.txt get IPVS{Available: false} with that reason instead of "not
// collected".
func noIPVS(m *topology.Model) {
	prefix := BundleIPVS + " not collected in any namespace: kernel has no IPVS ("
	for _, n := range m.Notes {
		if !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, ")") {
			continue
		}
		reason := noIPVSPrefix + strings.TrimSuffix(strings.TrimPrefix(n, prefix), ")")
		for _, ns := range m.Namespaces {
			if ns.IPVS == nil {
				ns.IPVS = &topology.IPVS{Available: false, Reason: reason, Services: []*topology.IPVSService{}}
			}
		}
	}
}

// readBundleNetns reads the namespace folder dir (a path in the bundle b),
// but for the files skip names (nil: none); notes are facts about what was
// read (see readBundleFirewall).
func readBundleNetns(b *safefile.Dir, dir, name string, skip func(netns, file string) bool) (*topology.Namespace, []string, error) {
	// Its files are read from the folder opened once (a name each,
	// instead of a walk from the bundle's top per file): "" is the
	// folder from here on.
	sub, err := b.Sub(dir)
	if err != nil {
		return nil, nil, err
	}
	defer sub.Close()
	if skip != nil {
		sub.Hide(func(file string) bool { return skip(name, file) })
	}
	b, dir = sub, ""
	ns := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: name}}
	if name == BundleHost {
		ns.Role = topology.RoleHost
	}
	found, err := parseFile(b, path.Join(dir, BundleIPAddr), func(file string, r io.Reader) (e error) {
		ns.Links, e = parse.IPAddr(file, r)
		return e
	})
	if err != nil {
		return nil, nil, err
	}
	if !found {
		ns.Errors = append(ns.Errors, BundleIPAddr+" not collected")
	}
	fw, notes, err := readBundleFirewall(b, dir, name)
	if err != nil {
		return nil, nil, err
	}
	ns.Firewall = fw
	if _, err := parseFile(b, path.Join(dir, BundleIPVS), func(file string, r io.Reader) (e error) {
		ns.IPVS, e = parse.Ipvsadm(file, r)
		return e
	}); err != nil {
		return nil, nil, err
	}
	if err := readBundleState(b, dir, ns); err != nil {
		return nil, nil, err
	}
	if err := readBundleExtra(b, dir, ns); err != nil {
		return nil, nil, err
	}
	return ns, notes, nil
}

// parseFile opens the bundle's file name and hands it to fn with its
// path; found is false when the file does not exist. Every file is opened
// through safefile: a regular file inside the bundle, read up to
// safefile.MaxFile. Errors that are not the parser's own name the file.
func parseFile(b *safefile.Dir, name string, fn func(file string, r io.Reader) error) (found bool, err error) {
	f, err := b.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err // it names the file
	}
	defer f.Close()
	file := b.Join(name)
	r, err := sizedReader(f)
	if err != nil {
		return true, err
	}
	if err := fn(file, r); err != nil {
		var pe *parse.Error
		var se *safefile.Error
		if errors.As(err, &pe) || errors.As(err, &se) {
			return true, err
		}
		return true, fmt.Errorf("%s: %w", file, err)
	}
	return true, nil
}

// smallFile is the largest file parseFile reads whole before parsing.
const smallFile = 1 << 20

// sizedReader is what a parser reads f through: a small file read whole
// (its parser's buffers then take its size, not their block size: a bundle
// of a hundred task namespaces is thousands of files of a few hundred
// bytes), a larger one through a 64 KiB buffer.
func sizedReader(f *safefile.File) (io.Reader, error) {
	st, err := f.Stat()
	if err != nil || st.Size() >= smallFile {
		return bufio.NewReaderSize(f, 64<<10), nil
	}
	b := make([]byte, 0, st.Size()+1) // +1: the read that says EOF
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return parse.NewWhole(b), nil
		}
		if err != nil {
			return nil, &safefile.Error{Path: f.Name(), Err: err}
		}
		if len(b) == cap(b) { // it grew since: read on
			b = append(b, 0)[:len(b)]
		}
	}
}

// readFile reads the bundle's file name whole; nil when it does not exist.
func readFile(b *safefile.Dir, name string) ([]byte, error) {
	data, err := b.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// readNetnsList reads NAMESPACES.txt, the names of every namespace the
// collection found: the bundle's set of namespaces is whole when the file
// is there and each name in it has its folder (names, those read). A
// listed name without a folder is a note: that namespace was on the node
// and is not in the bundle. Without the file (a bundle assembled by hand)
// the set is not known to be whole.
func readNetnsList(b *safefile.Dir, names []string) (complete bool, notes []string, err error) {
	if _, err := b.Stat(BundleNetnsList); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("bundle: %w", err)
	}
	lines, err := readNotes(b, BundleNetnsList)
	if err != nil {
		return false, nil, err
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	var missing []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "#") && !have[l] {
			missing = append(missing, l)
		}
	}
	switch {
	case len(missing) == 0:
		return true, nil, nil
	case len(missing) > 5:
		missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
	}
	return false, []string{fmt.Sprintf("%s lists namespaces whose folders are not in the bundle (not collected): %s", BundleNetnsList, strings.Join(missing, ", "))}, nil
}

// readNotes returns the non-empty lines of NOTES.txt, nil when absent.
func readNotes(b *safefile.Dir, name string) ([]string, error) {
	data, err := readFile(b, name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// readBundleDocker reads DIR/docker/*.json into the model's Docker
// metadata, and notes of what was not collected; nil when none is there.
func readBundleDocker(b *safefile.Dir, dir string, notes []string) (*topology.DockerMeta, []string, error) {
	var in [3]jsonInput
	for i, name := range []string{BundleNetworksJSON, BundleContainerJSON, BundleServicesJSON} {
		data, err := readFile(b, path.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		in[i] = jsonInput{name: b.Join(path.Join(dir, name)), data: data}
	}
	d, err := dockerMetaFromJSON(in[0], in[1], in[2])
	if err != nil {
		return nil, nil, err
	}
	var out []string
	if d != nil && len(bytes.TrimSpace(in[2].data)) == 0 && !notesMention(notes, BundleServicesJSON) {
		out = append(out, "docker services not collected ("+in[2].name+" missing)")
	}
	return d, out, nil
}

func notesMention(notes []string, s string) bool {
	for _, n := range notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
