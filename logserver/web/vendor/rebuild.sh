#!/bin/sh
# Rebuilds mldsa44.js from the npm registry (README.md here): fetches the pinned tarballs into a scratch folder
# OUTSIDE the repository, checks each against its sha256 below, installs them and bundles with esbuild.
# Usage: sh logserver/web/vendor/rebuild.sh   (from the repository root; needs node >= 20 and npm)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
npm pack --silent @noble/post-quantum@0.7.1 @noble/hashes@2.4.0 @noble/curves@2.4.0 @noble/ciphers@2.4.0 \
  esbuild@0.28.2 >/dev/null
sha256sum -c - <<'SUMS'
e98947485ff33c322ce75f8ae32cf7041a510dca9b8135f10475c8c10c956bab  noble-post-quantum-0.7.1.tgz
e1946149b780017b2564fcc092cb01c04e1d7f20627d0296c17da8868f4436dc  noble-hashes-2.4.0.tgz
55279c71b0201d6c0e58d0206d15825359e02a3932f326ba7b7909ac2d334aa9  noble-curves-2.4.0.tgz
4a398bcc280c8742d474f9162f6d3c153e52ab1078e8ab592b4720410fb3c3e9  noble-ciphers-2.4.0.tgz
e045f94c235c7adc50e77ba2a579c7bec41b496b6b47c3a7845f7c1e19959a88  esbuild-0.28.2.tgz
SUMS
echo '{"name": "mldsa44-bundle", "private": true}' > package.json
# esbuild's own platform binary (@esbuild/<platform>) comes from the registry at the version esbuild pins.
npm install --silent --ignore-scripts --no-audit --no-fund ./noble-hashes-2.4.0.tgz ./noble-curves-2.4.0.tgz \
  ./noble-ciphers-2.4.0.tgz ./noble-post-quantum-0.7.1.tgz ./esbuild-0.28.2.tgz
cp "$here/mldsa44-entry.mjs" entry.mjs
./node_modules/.bin/esbuild entry.mjs --bundle --format=iife --global-name=tlogMlDsa44 --target=es2020 \
  --minify --legal-comments=inline --charset=utf8 --log-level=warning --outfile="$here/mldsa44.js"
# The packages whose code is in the bundle (esbuild --metafile lists them; @noble/ciphers is not used).
for package in post-quantum hashes curves; do
  cp "node_modules/@noble/$package/LICENSE" "$here/LICENSE.noble-$package"
done
sha256sum "$here/mldsa44.js"
