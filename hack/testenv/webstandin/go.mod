// A module of its own so building the stand-in never reads or changes the
// orchestrator's go.mod, and `go test ./...` at the root skips this folder.
module github.com/aipairpro/orchestrator/hack/testenv/webstandin

go 1.22
