#!/usr/bin/env bash
# Builds a container image FROM scratch with buildah, without a registry: the installed (or given)
# remediate binary, the shared libraries it links, the CA bundle, a passwd entry for uid 10001,
# remediate as entrypoint, run as that user. For machines that cannot pull the Dockerfile's base
# images. Then, e.g.:
#   buildah --storage-driver vfs from --name r localhost/remediate:scratch
#   buildah --storage-driver vfs run --isolation chroot r -- remediate apply /samples/mailboxes.csv --profile smtp-auth-fix --simulate --yes
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-$(command -v remediate)}
buildah=(buildah --storage-driver "${STORAGE_DRIVER:-vfs}")
container=$("${buildah[@]}" from scratch)
root=$("${buildah[@]}" mount "$container")
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/samples" "$root/var/lib/remediate" "$root/tmp"
cp "$binary" "$root/usr/local/bin/remediate"
# The loader and every library ldd names, at the same paths.
for library in $(ldd "$binary" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$library")"
  cp "$library" "$root$library"
done
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
cp samples/mailboxes.csv "$root/samples/"
chmod 1777 "$root/tmp"
chown 10001:10001 "$root/var/lib/remediate"
printf 'root:x:0:0::/:/nonexistent\nremediate:x:10001:10001::/var/lib/remediate:/nonexistent\n' >"$root/etc/passwd"
"${buildah[@]}" unmount "$container"
"${buildah[@]}" config --entrypoint '["remediate"]' --cmd '["--help"]' --user 10001 \
  --workingdir /var/lib/remediate --env XDG_CACHE_HOME=/var/lib/remediate/.cache --env PATH=/usr/local/bin "$container"
"${buildah[@]}" commit -q "$container" localhost/remediate:scratch
"${buildah[@]}" rm "$container" >/dev/null
