package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/meshtrace/meshtrace/topology"
)

// Discover lists the host namespace and every namespace file in dirs, in
// that order (files sorted by name). A directory that does not exist is
// skipped: a node without Docker has no /run/docker/netns. The same
// namespace reachable through two files is listed once (first name wins),
// and a file that is the host namespace is not listed again.
func Discover(hostPath string, dirs []string) ([]NetnsRef, error) {
	if hostPath == "" {
		hostPath = HostPath()
	}
	var ref syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &ref); err != nil {
		return nil, fmt.Errorf("nsfs: %w", err)
	}
	ino, err := nsInode(hostPath, uint64(ref.Dev))
	if err != nil {
		return nil, fmt.Errorf("host netns %s: %w", hostPath, err)
	}
	refs := []NetnsRef{{NetnsRef: topology.NetnsRef{Name: "host", Path: hostPath}, Inode: ino}}
	seen := map[uint64]bool{ino: true}
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netns dir %s: %w", dir, err)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if e.Type().IsRegular() || e.Type() == 0 {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			p := filepath.Join(dir, n)
			ino, err := nsInode(p, uint64(ref.Dev))
			if err != nil {
				// A file that is not (or no longer) a namespace bind
				// mount: dockerd leaves such files behind after a crash.
				continue
			}
			if seen[ino] {
				continue
			}
			seen[ino] = true
			refs = append(refs, NetnsRef{NetnsRef: topology.NetnsRef{Name: n, Path: p}, Inode: ino})
		}
	}
	return refs, nil
}

// nsInode returns the inode of a namespace file and checks that it is one:
// nsfs files have st_dev of the nsfs mount, which a plain file never has;
// a cheaper proxy is that a plain empty file left behind by a crashed
// daemon has an inode on the directory's own filesystem. We compare with
// nsfsDev, the device of /proc/self/ns/net (stat'ed once per Discover).
func nsInode(path string, nsfsDev uint64) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	if uint64(st.Dev) != nsfsDev {
		return 0, fmt.Errorf("%s is not a network namespace file", path)
	}
	return st.Ino, nil
}
