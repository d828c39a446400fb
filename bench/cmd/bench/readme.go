package main

import "fmt"

func readmeCmd(args []string) error { return fmt.Errorf("not yet") }
