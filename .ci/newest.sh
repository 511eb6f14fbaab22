#!/usr/bin/env bash
# Builds .ci/newest/main.go in a fresh module outside the repository, against this checkout
# of the library, after `go get -u` of every dependency (the newest releases of pgx, nats.go,
# ristretto, zerolog, …, whatever go.mod pins), then runs it against the local PostgreSQL and
# NATS. A user who runs `go mod tidy` today gets those versions: an upstream change that
# breaks the library shows here first.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$repo/.ci/newest/main.go" "$work/"
cd "$work"
cat > go.mod <<MOD
module example.com/newest

go 1.26

require github.com/gamepersist/gamepersist v0.0.0

replace github.com/gamepersist/gamepersist => $repo
MOD
export GOFLAGS=-mod=mod
go get -u ./... 2>&1 | grep -E '^go: (upgraded|added)' || true
go mod tidy
echo "newest dependency versions:"
go list -m github.com/jackc/pgx/v5 github.com/nats-io/nats.go github.com/dgraph-io/ristretto/v2 github.com/rs/zerolog | sed 's/^/  /'
go vet ./...
go run .
