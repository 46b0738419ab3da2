#!/usr/bin/env bash
# Installs the Debian packages OpenDojo needs, only those that are missing.
# Usage: scripts/install-deps.sh [extra-package ...]   (uses sudo when not root)
set -euo pipefail
# libcurl4: FoundationNetworking (the dojo client commands' HTTP) loads it at run time.
# bubblewrap: dojo serve runs every job in a sandbox (Sources/DojoService/Sandbox.swift).
# iproute2 (ip, tc) and util-linux (unshare): the multi-host tests make hosts as network namespaces (scripts/netns-hosts.sh).
# openmpi-bin libopenmpi-dev: dojo train --ranks N (data-parallel training over MPI).
pkgs=(pkg-config libdnnl-dev zlib1g-dev libsqlite3-dev libcurl4 bubblewrap openmpi-bin libopenmpi-dev iproute2 util-linux dataset-fashion-mnist "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing missing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y --no-install-recommends "${missing[@]}"
