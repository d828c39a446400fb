package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-connections/sockets"
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

// DockerConnectTimeout bounds how long a daemon whose socket is there has
// to answer its ping. A missing socket or a refused connection means no
// daemon at once; a daemon that accepts and stays silent (dockerd busy on
// a loaded node) is an error, never "no Docker".
var DockerConnectTimeout = 5 * time.Second

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
// DOCKER_* variables are honoured). It returns (nil, nil) when there is no
// daemon (see DialDocker): a node without Docker is normal.
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
// It returns (nil, nil) when there is no daemon (no socket, or nothing
// listening on it), and an error for a client that cannot be configured (a
// malformed DOCKER_HOST) or a daemon that does not answer within
// DockerConnectTimeout.
func DialDocker(ctx context.Context, opts ...client.Opt) (*Engine, error) {
	c, err := client.New(append([]client.Opt{client.FromEnv}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if noDaemon(c.DaemonHost()) {
		c.Close()
		return nil, nil
	}
	pctx, cancel := context.WithTimeout(ctx, DockerConnectTimeout)
	defer cancel()
	ping, err := c.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("docker daemon at %s did not answer: %w", c.DaemonHost(), err)
	}
	e := &Engine{c: c, manager: true}
	if s := ping.SwarmStatus; s != nil {
		e.swarm = string(s.NodeState)
		e.manager = s.ControlAvailable
	}
	return e, nil
}

// noDaemon dials the daemon's socket itself (the client reports every
// failure alike): no socket file or nobody listening on it (ENOENT,
// ECONNREFUSED) means there is no daemon. Hosts other than unix:// and
// tcp:// are left to the ping.
func noDaemon(host string) bool {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || (proto != "unix" && proto != "tcp") {
		return false
	}
	conn, err := net.DialTimeout(proto, addr, DockerConnectTimeout)
	if err != nil {
		return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
	}
	conn.Close()
	return false
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
		// Verbose: a swarm network's tasks on every node, so remote
		// backends get their task and node.
		verbose := n.Scope == "swarm"
		res, err := e.c.NetworkInspect(ctx, n.ID, client.NetworkInspectOptions{Verbose: verbose})
		if err != nil && verbose && undecodable(err) {
			// Docker before API 1.44 prints an absent VIP as "<nil>" (the
			// ingress network always has one), which the client's types
			// refuse: read the answer ourselves.
			raw, ferr := e.networkVerbose(ctx, n.ID)
			if ferr != nil {
				return nil, fmt.Errorf("network %s: %w", n.Name, errors.Join(err, ferr))
			}
			res.Network, err = raw, nil
		}
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

// undecodable: the daemon answered and the client's types refused the
// JSON (a "<nil>" address fails netip's ParseAddr).
func undecodable(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te) || strings.Contains(err.Error(), "ParseAddr(")
}

// networkVerbose is `docker network inspect --verbose ID` read over plain
// HTTP and decoded like a bundle's networks.json (so "<nil>" reads as no
// address). Only unix:// and tcp:// hosts without TLS.
func (e *Engine) networkVerbose(ctx context.Context, id string) (network.Inspect, error) {
	host := e.c.DaemonHost()
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || (proto != "unix" && proto != "tcp") || os.Getenv("DOCKER_TLS_VERIFY") != "" || os.Getenv("DOCKER_CERT_PATH") != "" {
		return network.Inspect{}, fmt.Errorf("verbose inspect of network %s: host %s not supported", id, host)
	}
	tr := &http.Transport{}
	if err := sockets.ConfigureTransport(tr, proto, addr); err != nil {
		return network.Inspect{}, fmt.Errorf("docker host %s: %w", host, err)
	}
	defer tr.CloseIdleConnections()
	base := "http://docker"
	if proto == "tcp" {
		base = "http://" + addr
	}
	u := base + "/v" + e.c.ClientVersion() + "/networks/" + url.PathEscape(id) + "?verbose=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return network.Inspect{}, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return network.Inspect{}, fmt.Errorf("verbose inspect of network %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return network.Inspect{}, fmt.Errorf("verbose inspect of network %s: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return network.Inspect{}, fmt.Errorf("verbose inspect of network %s: %s: %s", id, resp.Status, bytes.TrimSpace(body))
	}
	var nets []network.Inspect
	if err := decodeArray(body, &nets); err != nil || len(nets) != 1 {
		return network.Inspect{}, fmt.Errorf("verbose inspect of network %s: %d networks, %v", id, len(nets), err)
	}
	return nets[0], nil
}
