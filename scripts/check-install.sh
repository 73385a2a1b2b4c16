#!/usr/bin/env bash
# Follows the README's install steps on a fresh clone of this repository's HEAD (issue #13):
#   1. "Set up and try it": `npm ci && npm start` works and leaves `git status` clean;
#   2. "Run it as a service": dist/ and the package files copied elsewhere, `npm ci --omit=dev`
#      there installs no dev dependency (vitest, playwright-core, typescript…), and the installed
#      copy runs: its replay prints the same webhooks as the clone's.
# Needs the npm registry (or a warm npm cache). Usage: scripts/check-install.sh [WORK_DIR]
set -euo pipefail
repo="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/pbxhook-install-XXXXXX")}"
clone="$work/clone"
opt="$work/opt"
fail() { echo "check-install: FAIL: $*" >&2; exit 1; }
rm -rf "$clone" "$opt"
git clone -q "$repo" "$clone"
cd "$clone"
echo "check-install: npm ci && npm start in a fresh clone of $(git rev-parse --short HEAD) ($(npm --version))"
npm ci --no-audit --no-fund >/dev/null
[ -z "$(git status --porcelain)" ] || fail "npm ci left the clone dirty: $(git status --porcelain | tr '\n' ' ')"
npm start --silent >"$work/start.out"
[ -s "$work/start.out" ] || fail "npm start printed no webhooks"
[ -z "$(git status --porcelain)" ] || fail "npm start left the clone dirty: $(git status --porcelain | tr '\n' ' ')"

echo "check-install: the production install (npm ci --omit=dev) in $opt"
mkdir -p "$opt"
cp -r dist package.json package-lock.json README.md "$opt/"
(cd "$opt" && npm ci --omit=dev --no-audit --no-fund >/dev/null)
dev=$(node -e 'console.log(Object.keys(require("./package.json").devDependencies).join("\n"))')
found=()
for p in $dev vite esbuild rollup; do
  [ -e "$opt/node_modules/$p" ] && found+=("$p")
done
[ ${#found[@]} -eq 0 ] || fail "the production install holds dev packages: ${found[*]}"
for p in $(node -e 'console.log(Object.keys(require("./package.json").dependencies).join("\n"))'); do
  [ -e "$opt/node_modules/$p" ] || fail "the production install lacks $p"
done
trace=test/fixtures/asterisk/in-queue-answered.ami
(cd "$clone" && node "$opt/dist/cli.js" replay "$trace" --config config/lab.example.yaml 2>/dev/null) >"$work/installed.out" \
  || fail "the installed copy does not run"
cmp -s "$work/start.out" "$work/installed.out" || fail "the installed copy prints other webhooks than the clone"
echo "check-install: ok ($(ls "$opt/node_modules" | wc -l) top-level packages, none of: $(echo $dev | tr ' ' ','))"
