package main

import "github.com/spf13/cobra"

// root is the top command; every other command adds itself to it from the
// init function of its own file (inspect.go, path.go, mesh.go, ...).
var root = &cobra.Command{
	Use:           "meshtrace",
	Short:         "show how packets travel through the Docker Swarm routing mesh, and why they don't arrive",
	SilenceUsage:  true,
	SilenceErrors: true,
}

// exitError makes main exit with a given code and message (msg may be
// empty when the command already printed what went wrong).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitStatus makes main exit with code after what the command printed
// (nil for 0).
func exitStatus(code int) error {
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}
