#!/usr/bin/env bash
# Vendors uPlot (the dashboard's charting library) from the npm registry into
# server/dashboard/static/vendor/uplot/: the minified IIFE build, its CSS and its MIT licence,
# plus VERSION (version, tarball integrity) so a reader can check what is checked in.
# A maintainer runs it to upgrade; nothing runs it at setup or run time.
#   scripts/vendor_uplot.sh [VERSION]     # default: the version pinned below
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-1.6.32}"
dest=server/dashboard/static/vendor/uplot
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent --json "uplot@${version}" > pack.json)
tarball="$work/uplot-${version}.tgz"
tar -xzf "$tarball" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$dest/"
cp "$work/package/LICENSE" "$dest/LICENSE"
integrity="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$work/pack.json")"
license="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["license"])' "$work/package/package.json")"
cat > "$dest/VERSION" <<INFO
package: uplot
version: ${version}
license: ${license} (LICENSE beside this file)
source: npm registry, npm pack uplot@${version}
integrity: ${integrity}
sha256: $(sha256sum "$tarball" | cut -d' ' -f1)
files: uPlot.iife.min.js uPlot.min.css LICENSE
INFO
echo "vendored uplot ${version} (${license}) into ${dest}"
