# meshtrace in a FROM-scratch image: the static binary alone. It reads a
# node in-process (netlink, nf_tables, IPVS over generic netlink): the
# image needs no ip, iptables or ipvsadm. `meshtrace swarm collect` runs it
# on every node as a global job; see README.md "On every node of a swarm".
#
#   docker build -t meshtrace:dev .       (or scripts/image, which can do without a registry)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/meshtrace ./cmd/meshtrace

FROM scratch
COPY --from=build /out/meshtrace /meshtrace
ENTRYPOINT ["/meshtrace"]
