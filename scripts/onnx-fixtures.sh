#!/usr/bin/env bash
# Exports the ONNX fixtures the import tests read (scripts/onnx-fixtures.py, PyTorch from Debian's python3-torch and
# python3-torchvision) into .fixtures/onnx, once: a stamp with the script's checksum says they are current.
# Usage: scripts/onnx-fixtures.sh [--bench]   (--bench adds a GPT-2-small-sized decoder for make bench)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.fixtures/onnx
scripts/install-deps.sh python3-torch python3-torchvision
sum=$(sha256sum scripts/onnx-fixtures.py | cut -c1-16)
# current when written by this script (with --bench when that is asked for)
if [ -f "$out/.stamp" ]; then
  case "$(cat "$out/.stamp")" in "$sum--bench") exit 0 ;; "$sum") [ "${1:-}" != --bench ] && exit 0 ;; esac
fi
echo "exporting ONNX fixtures with PyTorch into $out…"
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
/usr/bin/python3 -W ignore scripts/onnx-fixtures.py "$out.tmp" "$@" 2>&1 | grep -v "^ *\(_C\._jit\|assert\|att = \)" || true
[ -f "$out.tmp/resnet18.onnx" ] || { echo "error: exporting the ONNX fixtures failed" >&2; exit 1; }
# onnxruntime (PyPI) as the independent runtime that reads what dojo train --export-onnx writes; numpy is Debian's
/usr/bin/python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$out.tmp/python" 'onnxruntime>=1.17,<2'
echo "$sum${1:-}" > "$out.tmp/.stamp"
rm -rf "$out" && mv "$out.tmp" "$out"
