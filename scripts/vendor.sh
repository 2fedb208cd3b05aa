#!/usr/bin/env bash
# Re-vendors the pinned front-end packages from the npm registry into app/static/vendor.
# The files are committed; run this only to change a version (and update the README's list).
set -euo pipefail
HTMX=2.0.11
BOOTSTRAP=5.3.8
CHARTJS=4.6.1
dest="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "htmx.org@$HTMX" "bootstrap@$BOOTSTRAP" "chart.js@$CHARTJS" >/dev/null
tar xzf "htmx.org-$HTMX.tgz" && cp package/dist/htmx.min.js "$dest/htmx-$HTMX.min.js" && rm -rf package
tar xzf "chart.js-$CHARTJS.tgz" && cp package/dist/chart.umd.min.js "$dest/chart-$CHARTJS.umd.min.js" && rm -rf package
tar xzf "bootstrap-$BOOTSTRAP.tgz"
cp package/dist/css/bootstrap.min.css "$dest/bootstrap-$BOOTSTRAP.min.css"
cp package/dist/js/bootstrap.bundle.min.js "$dest/bootstrap-$BOOTSTRAP.bundle.min.js"
# The source maps are not shipped; drop the comments that point at them.
sed -i 's#/\*\# sourceMappingURL=.*\*/##; s#//\# sourceMappingURL=.*##' "$dest"/bootstrap-$BOOTSTRAP.* "$dest/chart-$CHARTJS.umd.min.js"
