#!/usr/bin/env bash
# Regenerates Sources/DojoONNX/Generated/onnx.pb.swift from Sources/DojoONNX/Proto/onnx.proto (ONNX 1.23.2's, from
# the onnx wheel on PyPI; Apache-2.0). Run by hand after changing the .proto; CI never runs it (building the plugin
# takes minutes). Needs protoc (Debian's protobuf-compiler) and builds protoc-gen-swift from apple/swift-protobuf at
# the version Package.swift names, in a scratch folder outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.39.0
scratch=${SCRATCH:-/tmp/opendojo-swift-protobuf}
command -v protoc >/dev/null || scripts/install-deps.sh protobuf-compiler
if [ ! -x "$scratch/.build/release/protoc-gen-swift" ]; then
  rm -rf "$scratch"
  git clone -q https://github.com/apple/swift-protobuf "$scratch"
  git -C "$scratch" checkout -q "$version"
  (cd "$scratch" && swift build -c release --product protoc-gen-swift)
fi
protoc --plugin=protoc-gen-swift="$scratch/.build/release/protoc-gen-swift" \
       --swift_opt=Visibility=Public --swift_out=Sources/DojoONNX/Generated \
       -I Sources/DojoONNX/Proto Sources/DojoONNX/Proto/onnx.proto
echo "wrote Sources/DojoONNX/Generated/onnx.pb.swift"
