package inspect

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/meshtrace/meshtrace/topology"
)

// DockerReader is what meshtrace asks the Docker engine. The engine client
// implements it; tests use a fake.
type DockerReader interface {
	// Networks is `docker network inspect` of every network.
	Networks(ctx context.Context) ([]network.Inspect, error)
	// Containers is `docker inspect` of every running container.
	Containers(ctx context.Context) ([]container.InspectResponse, error)
	// Services is `docker service inspect` of every service; it fails on
	// a node that is not a swarm manager.
	Services(ctx context.Context) ([]swarm.Service, error)
}

// DockerConnectTimeout bounds how long DockerLive waits for a daemon to
// answer before deciding there is none.
var DockerConnectTimeout = 300 * time.Millisecond

// ReadDocker asks r for networks, containers and services. Services that
// cannot be listed (a worker node) are left nil with a note; networks and
// containers are still returned.
func ReadDocker(ctx context.Context, r DockerReader) (*DockerData, error) {
	var d DockerData
	var err error
	if d.Networks, err = r.Networks(ctx); err != nil {
		return nil, fmt.Errorf("docker networks: %w", err)
	}
	if d.Containers, err = r.Containers(ctx); err != nil {
		return nil, fmt.Errorf("docker containers: %w", err)
	}
	if d.Services, err = r.Services(ctx); err != nil {
		d.Services = nil
		d.Notes = append(d.Notes, fmt.Sprintf("docker services not available: %v", err))
	}
	return &d, nil
}

// ReadDockerLive reads the local Docker engine (DOCKER_HOST and the other
// DOCKER_* variables are honoured). It returns (nil, nil) when no daemon
// answers within DockerConnectTimeout: a node without Docker is normal.
func ReadDockerLive(ctx context.Context) (*DockerData, error) {
	r, err := DialDocker(ctx)
	if err != nil || r == nil {
		return nil, err
	}
	defer r.Close()
	return ReadDocker(ctx, r)
}

// DockerLive is ReadDockerLive converted to the model's metadata; (nil,
// nil) when no daemon answers.
func DockerLive(ctx context.Context) (*topology.DockerMeta, error) {
	d, err := ReadDockerLive(ctx)
	if err != nil || d == nil {
		return nil, err
	}
	return d.Meta(), nil
}

// Engine is a DockerReader over the engine's API client.
type Engine struct {
	c *client.Client
	// manager is false when the daemon said it is a swarm worker or not
	// in a swarm: listing services would fail.
	manager bool
	swarm   string
}

var _ DockerReader = (*Engine)(nil)

// DialDocker connects to the local engine and negotiates the API version.
// It returns (nil, nil) when no daemon answers within DockerConnectTimeout,
// and an error only for a client that cannot be configured (a malformed
// DOCKER_HOST).
func DialDocker(ctx context.Context, opts ...client.Opt) (*Engine, error) {
	c, err := client.New(append([]client.Opt{client.FromEnv}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, DockerConnectTimeout)
	defer cancel()
	ping, err := c.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		c.Close()
		return nil, nil
	}
	e := &Engine{c: c, manager: true}
	if s := ping.SwarmStatus; s != nil {
		e.swarm = string(s.NodeState)
		e.manager = s.ControlAvailable
	}
	return e, nil
}

// Close releases the client's connections.
func (e *Engine) Close() error { return e.c.Close() }

// Networks inspects every network.
func (e *Engine) Networks(ctx context.Context) ([]network.Inspect, error) {
	list, err := e.c.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]network.Inspect, 0, len(list.Items))
	for _, n := range list.Items {
		res, err := e.c.NetworkInspect(ctx, n.ID, client.NetworkInspectOptions{})
		if err != nil {
			// Removed between list and inspect.
			if cerrdefs.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		out = append(out, res.Network)
	}
	return out, nil
}

// Containers inspects every running container.
func (e *Engine) Containers(ctx context.Context) ([]container.InspectResponse, error) {
	list, err := e.c.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]container.InspectResponse, 0, len(list.Items))
	for _, c := range list.Items {
		res, err := e.c.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("container %.12s: %w", c.ID, err)
		}
		out = append(out, res.Container)
	}
	return out, nil
}

// Services lists every service; only a swarm manager can.
func (e *Engine) Services(ctx context.Context) ([]swarm.Service, error) {
	if !e.manager {
		state := e.swarm
		if state == "" {
			state = "unknown"
		}
		return nil, fmt.Errorf("this node is not a swarm manager (swarm state %s)", state)
	}
	list, err := e.c.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}
