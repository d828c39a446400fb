// Command meshtrace shows how a packet travels through the Docker Swarm
// routing mesh on a Linux node, and why it does not arrive.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/meshtrace/meshtrace/internal/textsafe"
)

func main() {
	if err := root.Execute(); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "meshtrace: "+textsafe.Text(ee.msg))
			}
			os.Exit(ee.code)
		}
		// Errors name files and lines of the input: escaped like the output.
		fmt.Fprintln(os.Stderr, "meshtrace: "+textsafe.Text(err.Error()))
		os.Exit(1)
	}
}
