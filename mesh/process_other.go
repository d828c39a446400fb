//go:build !linux

package mesh

import "time"

// agentRunning: there is no agent without Linux.
func agentRunning(int, string, string) bool { return false }

// SetTaskMode fails: there is no agent without Linux.
func (st *State) SetTaskMode(string, string, time.Duration) (string, error) {
	return "", errUnsupported
}

// SetResolverMode fails: there is no agent without Linux.
func (st *State) SetResolverMode(string, string, time.Duration) (string, error) {
	return "", errUnsupported
}
