package netnsx

import (
	"os/exec"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on a locked OS thread that has entered the network namespace at
// path, then moves the thread back. If moving back fails the thread stays
// locked, so the Go runtime discards it instead of reusing a thread in the
// wrong namespace. An empty path runs fn in the caller's namespace.
func Do(path string, fn func() error) (err error) {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return &Error{Op: "open", Path: path, Err: err}
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return &Error{Op: "open", Path: "current", Err: err}
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return &Error{Op: "enter", Path: path, Err: err}
	}
	restored := false
	defer func() {
		if restored {
			runtime.UnlockOSThread()
		}
	}()
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime kills it when this goroutine
		// exits, so no other goroutine ever runs in the wrong namespace.
		return &Error{Op: "restore", Path: path, Err: err}
	}
	restored = true
	return ferr
}

// Start starts cmd with its process in the network namespace at path. The
// child inherits the namespace of the thread that forks it, so the fork
// happens inside Do. Wait for it as usual.
func Start(path string, cmd *exec.Cmd) error {
	return Do(path, cmd.Start)
}

// Output runs cmd inside the namespace at path and returns its stdout.
func Output(path string, cmd *exec.Cmd) ([]byte, error) {
	var out []byte
	err := Do(path, func() error {
		var e error
		out, e = cmd.Output()
		return e
	})
	return out, err
}

// Open returns a handle on the namespace at path ("" = the caller's own),
// for netlink.NewHandleAt. The caller closes it.
func Open(path string) (netns.NsHandle, error) {
	if path == "" {
		h, err := netns.Get()
		if err != nil {
			return h, &Error{Op: "open", Path: "current", Err: err}
		}
		return h, nil
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return h, &Error{Op: "open", Path: path, Err: err}
	}
	return h, nil
}
