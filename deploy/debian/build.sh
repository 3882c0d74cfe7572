#!/usr/bin/env bash
# Builds Shoal's Debian package with `cargo deb` (crate cargo-deb), from an already-built
# binary or after `cargo build --release`:
#
#   deploy/debian/build.sh                      # release build, then the package
#   deploy/debian/build.sh path/to/shoal [cargo deb flags...]
#
# The package holds the binary, the systemd unit (installed disabled), its environment
# file /etc/default/shoal, the man pages and the bash, zsh and fish completions; the last
# two are made here by the binary itself (`shoal man`, `shoal completions`), so they match
# it. Given a binary, it is staged with them in a scratch target directory and
# `cargo deb --no-build` packages that: nothing is compiled. The .deb goes to
# target/debian/ unless `--output` says otherwise. Needs `cargo install cargo-deb --locked`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

if ! cargo deb --version >/dev/null 2>&1; then
    echo "cargo-deb is missing: cargo install cargo-deb --locked" >&2
    exit 1
fi

if (($# >= 1)) && [[ $1 != -* ]]; then
    binary=$(realpath "$1")
    shift
    target=$(mktemp -d "${TMPDIR:-/tmp}/shoal-deb.XXXXXX")
    trap 'rm -rf "$target"' EXIT
    mkdir -p "$target/release"
    cp "$binary" "$target/release/shoal"
    # cargo-deb writes into the target directory by default: this one is removed.
    if [[ " $* " != *" --output "* && " $* " != *" -o "* ]]; then
        set -- --output "$repo/target/debian" "$@"
    fi
else
    cargo build --release --locked -p shoal
    target=${CARGO_TARGET_DIR:-$repo/target}
fi

# Under target/release/, which cargo-deb resolves to the target directory it is given.
built=$target/release
mkdir -p "$built/completions"
rm -rf "$built/man"
"$built/shoal" man --out-dir "$built/man"
# Debian installs man pages compressed (-n: no name or time stamp in them).
gzip -9n "$built"/man/*.1
"$built/shoal" completions bash >"$built/completions/shoal.bash"
"$built/shoal" completions zsh >"$built/completions/_shoal"
"$built/shoal" completions fish >"$built/completions/shoal.fish"

CARGO_TARGET_DIR=$target cargo deb --no-build -p shoal "$@"
