package mesh

// Task modes of the agent's control channel (see State.SetTaskMode).
const (
	TaskServe = "serve" // answer (the default)
	TaskStop  = "stop"  // close the server socket
	TaskHang  = "hang"  // keep listening, never answer
)
