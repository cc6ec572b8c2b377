// The code generators of the Go client, pinned, apart from the client module so its users do not
// inherit them. `make gen` builds them with `go build -modfile` and runs them through buf.
module github.com/wasm-policyd/wasm-policyd/clients/go/tools

go 1.25.0

tool (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc
	google.golang.org/protobuf/cmd/protoc-gen-go
)

require (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.2 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
