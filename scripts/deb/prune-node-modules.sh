#!/bin/sh
# prune-node-modules.sh APP: leaves in APP/node_modules (a production `npm ci`) what runs, for the
# Debian package: no dotfiles, examples, tests or doc sites, no build leftovers of native modules,
# no type declarations or source maps, executable bits on scripts only, stripped addons. License
# files and READMEs stay.
set -eu
nm="$1/node_modules"
[ -d "$nm" ] || { echo "prune-node-modules: no $nm" >&2; exit 1; }

rm -rf "$nm/.bin" "$nm/.package-lock.json"
find "$nm" -name '.*' -prune -exec rm -rf {} +
# Folders that only document or test a package, at a package's top (pkg or @scope/pkg).
for pkg in "$nm"/* "$nm"/@*/*; do
  [ -f "$pkg/package.json" ] || continue
  rm -rf "$pkg/example" "$pkg/examples" "$pkg/test" "$pkg/tests" "$pkg/docs" "$pkg/benchmarks" "$pkg/index.html"
done
# Native modules: of a node-gyp build only build/Release/*.node is loaded (by `bindings`).
for gyp in "$nm"/*/binding.gyp "$nm"/@*/*/binding.gyp; do
  [ -f "$gyp" ] || continue
  pkg=$(dirname "$gyp")
  keep=$(mktemp -d)
  cp "$pkg"/build/Release/*.node "$keep/"
  rm -rf "$pkg/build" "$pkg/deps" "$pkg/src" "$gyp"
  mkdir -p "$pkg/build/Release" && mv "$keep"/*.node "$pkg/build/Release/" && rmdir "$keep"
  rm -f "$pkg/build/Release/test_extension.node"
done
# Type declarations and source maps: node never loads them (12 MB).
find "$nm" -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' \) -delete
# Executable: exactly the files that are scripts (a #! line), such as the packages' own bins.
find "$nm" -type d -exec chmod 0755 {} + && find "$nm" -type f -exec chmod 0644 {} +
find "$nm" -type f -exec sh -c 'for f; do [ "$(head -c 2 "$f")" != "#!" ] || chmod 0755 "$f"; done' sh {} +
if command -v strip >/dev/null; then
  find "$nm" -name '*.node' -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +
fi
