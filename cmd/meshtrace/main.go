// Command meshtrace shows how a packet travels through the Docker Swarm
// routing mesh on a Linux node, and why it does not arrive.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := root.Execute(); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "meshtrace: "+ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "meshtrace: "+err.Error())
		os.Exit(1)
	}
}
