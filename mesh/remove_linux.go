package mesh

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
// (found in /proc/self/mountinfo, so a half-built mesh is cleaned too) and
// removes dir. Destroying a namespace destroys its links (the veth peers
// with them), addresses, routes, rules and IPVS services; the VXLAN
// devices' sockets go with the node namespaces. It touches nothing when
// dir is not mesh name's directory (see meshDir).
func (s *linuxSystem) Remove(dir, name string) (Removed, error) {
	var r Removed
	exists, err := meshDir(dir, name)
	if err != nil {
		return r, fmt.Errorf("mesh %s: %w", name, err)
	}
	r.Dir = exists
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

// meshDir says whether dir exists, and refuses it (saying why) unless it
// is mesh name's directory: a real directory (not a link) holding the
// state file of a mesh of that name (Up writes it first, before any
// namespace), or nothing at all (a mesh stopped before its first save).
func meshDir(dir, name string) (bool, error) {
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	refuse := func(why string) error {
		return fmt.Errorf("%s %s: not a mesh's directory, refusing to remove it", dir, why)
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		return true, refuse("is a link")
	case !st.IsDir():
		return true, refuse("is not a directory")
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		ents, rerr := os.ReadDir(dir)
		if rerr != nil {
			return true, rerr
		}
		if len(ents) == 0 || (len(ents) == 1 && ents[0].Name() == stateFile+".tmp") {
			return true, nil
		}
		return true, refuse("holds no " + stateFile)
	}
	if err != nil {
		return true, err
	}
	var saved struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		return true, refuse(fmt.Sprintf("holds a %s meshtrace did not write (%v)", stateFile, err))
	}
	if saved.Name != name {
		return true, refuse(fmt.Sprintf("belongs to mesh %q", saved.Name))
	}
	return true, nil
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
