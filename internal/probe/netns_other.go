//go:build !linux

package probe

import "errors"

// inNetns runs fn in the caller's namespace; another one needs Linux.
func inNetns(path string, fn func() error) error {
	if path != "" {
		return errors.New("netns " + path + ": network namespaces need Linux")
	}
	return fn()
}
