// Package netnsx is the one place where meshtrace switches network
// namespaces. Every other package asks it to run a function or start a
// process inside a namespace named by a path (a /run/docker/netns file, a
// /proc/PID/ns/net file, or a bind mount the mesh made).
package netnsx

import "fmt"

// Error is a failure to enter, leave or open a namespace. It names the
// namespace path and the operation.
type Error struct {
	Op   string // "open", "enter", "restore"
	Path string
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("netns %s: %s: %v", e.Path, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
