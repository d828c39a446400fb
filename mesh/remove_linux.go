package mesh

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"golang.org/x/sync/errgroup"
)

// Remove kills the mesh's agent, unmounts every namespace file under dir
// (found in /proc/self/mountinfo, so a half-built mesh without a state file
// is cleaned too) and removes dir. Destroying a namespace destroys its
// links (the veth peers with them), addresses, routes, rules and IPVS
// services; the VXLAN devices' sockets go with the node namespaces.
func (s *linuxSystem) Remove(dir, name string) (Removed, error) {
	var r Removed
	if _, err := os.Stat(dir); err == nil {
		r.Dir = true
	}
	r.Agents = agentPIDs(dir, name)
	sort.Ints(r.Agents)
	if err := killAndWait(r.Agents, 5*time.Second); err != nil {
		return r, fmt.Errorf("mesh %s: %w", name, err)
	}
	// Our own cached handles pin namespaces: drop them first.
	s.Close()

	for round := 0; round < 4; round++ {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return r, fmt.Errorf("mesh %s: %w", name, err)
		}
		if len(mounts) == 0 {
			break
		}
		if round == 0 {
			r.Lingering = lingering(mounts)
			r.Namespaces = len(mounts)
		}
		var g errgroup.Group
		g.SetLimit(8)
		for _, m := range mounts {
			g.Go(func() error { return netnsx.Destroy(m) })
		}
		if err := g.Wait(); err != nil {
			return r, fmt.Errorf("mesh %s: %w", name, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return r, fmt.Errorf("mesh %s: remove %s: %w", name, dir, err)
	}
	return r, nil
}

// mountsUnder lists the mount points strictly below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	seen := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, prefix) && !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/self/mountinfo: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := strings.Count(out[i], "/"), strings.Count(out[j], "/"); a != b {
			return a > b
		}
		return out[i] < out[j]
	})
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// lingering lists processes whose network namespace is one of the mounted
// namespace files (a shell left open by `mesh exec`): the namespace
// outlives the unmount until they exit. They are reported, not killed.
func lingering(mounts []string) []string {
	inodes := map[uint64]string{}
	for _, m := range mounts {
		var st syscall.Stat_t
		if syscall.Stat(m, &st) == nil {
			inodes[st.Ino] = m
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			continue
		}
		var ino uint64
		if _, err := fmt.Sscanf(link, "net:[%d]", &ino); err != nil {
			continue
		}
		if m, ok := inodes[ino]; ok && alive(pid) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			out = append(out, fmt.Sprintf("pid %d (%s) in %s", pid, strings.TrimSpace(string(comm)), m))
		}
	}
	return out
}
