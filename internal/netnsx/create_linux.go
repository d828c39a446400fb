package netnsx

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Create makes a new, empty network namespace and pins it with a bind mount
// on path (which must not exist; its directory must). The namespace is
// made on a locked thread that unshares, bind-mounts its own
// /proc/self/task/TID/ns/net and moves back; as in Do, a thread that cannot
// move back stays locked and dies with its goroutine. On failure nothing is
// left at path.
func Create(path string) (err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return &Error{Op: "create", Path: path, Err: err}
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return &Error{Op: "open", Path: "current", Err: err}
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return &Error{Op: "unshare", Path: path, Err: err}
	}
	src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	merr := unix.Mount(src, path, "none", unix.MS_BIND, "")
	if err := netns.Set(orig); err != nil {
		if merr == nil {
			unix.Unmount(path, unix.MNT_DETACH)
		}
		return &Error{Op: "restore", Path: path, Err: err}
	}
	runtime.UnlockOSThread()
	if merr != nil {
		return &Error{Op: "bind mount", Path: path, Err: merr}
	}
	return nil
}

// Destroy unmounts the namespace pinned at path (every mount stacked on it)
// and removes the file. The namespace itself goes away once no process,
// socket or mount holds it. A path that does not exist is not an error.
func Destroy(path string) error {
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		return &Error{Op: "unmount", Path: path, Err: err}
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return &Error{Op: "remove", Path: path, Err: err}
	}
	return nil
}
