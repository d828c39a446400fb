package ui

import (
	"strings"

	"charm.land/bubbles/v2/key"
)

// Key is a key binding whose help names exactly the keys it is bound to
// (so the help overlay, generated from the components' key maps, lists
// every key they handle and no other).
func Key(desc string, keys ...string) key.Binding {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = keyName(k)
	}
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(strings.Join(names, " "), desc))
}

// keyName is how the help writes a key.
func keyName(k string) string {
	switch k {
	case "up":
		return "↑"
	case "down":
		return "↓"
	case "left":
		return "←"
	case "right":
		return "→"
	case "pgdown":
		return "pgdn"
	}
	return k
}
