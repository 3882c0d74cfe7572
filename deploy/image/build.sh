#!/usr/bin/env bash
# Builds Shoal's container image from an already-built binary:
#
#   deploy/image/build.sh target/release/shoal shoal:latest [docker build flags...]
#
# The image is FROM scratch (see the Dockerfile beside this script): the build context is
# a temporary folder holding the Dockerfile and rootfs/ with the binary at /usr/bin/shoal
# and every library `ldd` names at its own path (for a static binary, none). Set
# SHOAL_IMAGE_STRIP=1 to strip the binary's debug information first (a smaller image,
# backtraces without file:line).
set -euo pipefail

if (($# < 2)); then
    echo "usage: $0 BINARY TAG [docker build flags...]" >&2
    exit 2
fi
binary=$1
tag=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

context=$(mktemp -d "${TMPDIR:-/tmp}/shoal-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
rootfs=$context/rootfs
mkdir -p "$rootfs/usr/bin" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

if [[ ${SHOAL_IMAGE_STRIP:-0} == 1 ]]; then
    strip -o "$rootfs/usr/bin/shoal" "$binary"
else
    cp "$binary" "$rootfs/usr/bin/shoal"
fi

# Every absolute path in ldd's answer is a library the binary loads (the vDSO has none).
# `ldd` fails on a static binary: then there is nothing to copy.
libraries=$(ldd "$binary" 2>/dev/null | grep -o '/[^ ]*' || true)
for lib in $libraries; do
    mkdir -p "$rootfs$(dirname "$lib")"
    # -L: the file a symlink (ld-linux, say) names, at the path the binary asks for.
    cp -L "$lib" "$rootfs$lib"
done

cp "$here/Dockerfile" "$context/Dockerfile"
docker build --tag "$tag" "$@" "$context"
