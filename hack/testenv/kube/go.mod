// A module of its own (standard library only) so building the cluster's
// helper programs never reads or changes the orchestrator's go.mod, and
// `go test ./...` at the root skips this folder.
module github.com/aipairpro/orchestrator/hack/testenv/kube

go 1.22
