#!/usr/bin/env bash
# Builds the Debian package: the release binary, its manual pages and shell completions (made by
# the binary itself, so they match its --help), then `cargo deb` around them.
# Needs cargo-deb: `cargo install cargo-deb --locked`. The package lands in target/debian/.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
assets=target/assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
target/release/remediate man --dir "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
target/release/remediate completions bash >"$assets/completions/remediate"
target/release/remediate completions zsh >"$assets/completions/_remediate"
target/release/remediate completions fish >"$assets/completions/remediate.fish"
cargo deb --no-build --locked --strip
