#!/bin/sh
# `npm run deb [-- OUTDIR]`: builds OUTDIR/pbxhook_<version>_<arch>.deb (default: the repository's
# top folder) with dpkg-deb. README "Run it as a service" installs it. Layout:
#   /usr/lib/pbxhook       package.json, dist (compiled here), production node_modules (npm ci --omit=dev)
#   /usr/bin/pbxhook       runs dist/cli.js with Debian's /usr/bin/node (man page: pbxhook.1)
#   /lib/systemd/system    systemd/pbxhook.service with the package's paths (not enabled on install)
#   /etc/pbxhook           pbxhook.yaml, webhooks.ini, pbxhook.schema.json: conffiles from the examples
#   /usr/share/doc/pbxhook README, webhook docs, the other config examples
#   /usr/share/pbxhook     pbxhook.rules.yml, Prometheus alerts (rule_files: names it there)
# Maintainer scripts (postinst, prerm, postrm) beside this file make the pbxhook user and
# /var/lib/pbxhook, and purge them; prune-node-modules.sh leaves in node_modules what runs.
#
# better-sqlite3 is a native module: it is built here for the ABI of /usr/bin/node (Debian's nodejs
# package, the one the package depends on), so the package depends on that Node major only.
set -eu
cd "$(dirname "$0")/../.."
here=scripts/deb
out=$(cd "${1:-.}" && pwd)
NODE=/usr/bin/node

die() { echo "npm run deb: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (Debian's dpkg package)"
[ -x "$NODE" ] || die "$NODE not found: install Debian's nodejs (>= 20), which builds and runs the package"
major=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "$NODE is Node $major; pbxhook needs Node 20 or newer"
[ -x node_modules/.bin/tsc ] || die "run npm install first (the build compiles with the project's TypeScript)"

version=$("$NODE" -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
deb="$out/pbxhook_${version}_${arch}.deb"
work=$(mktemp -d "${TMPDIR:-/tmp}/pbxhook-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
root="$work/root"
app="$root/usr/lib/pbxhook"
doc="$root/usr/share/doc/pbxhook"
umask 022

echo "npm run deb: compiling into $app" >&2
mkdir -p "$app"
# Into the staging folder, not ./dist: tests may be running from ./dist meanwhile.
node_modules/.bin/tsc -p tsconfig.json --outDir "$app/dist" --sourceMap false
# As `npm run build`: yaml, ini and zod bundled into one module, which starts faster (issue #15).
node scripts/bundle-config-libs.mjs "$app/dist"
chmod 0755 "$app/dist/cli.js"

echo "npm run deb: npm ci --omit=dev (better-sqlite3 for Node $major)" >&2
cp package.json package-lock.json "$app/"
# Build native modules against /usr/bin/node's own headers when the nodejs package has them.
if [ -f /usr/include/node/node_version.h ]; then export npm_config_nodedir=/usr; fi
(cd "$app" && PATH="/usr/bin:$PATH" npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)
rm -f "$app/package-lock.json"
sh "$here/prune-node-modules.sh" "$app"
# Every dependency still loads in the node that will run it, the native one included.
(cd "$app" && "$NODE" --input-type=module -e '
  const pkg = JSON.parse(await (await import("node:fs/promises")).readFile("package.json", "utf8"));
  for (const dep of Object.keys(pkg.dependencies)) await import(dep);
  const { default: Database } = await import("better-sqlite3");
  new Database(":memory:").close();') || die "a dependency does not load in $NODE after pruning"

install -D -m 0755 "$here/pbxhook" "$root/usr/bin/pbxhook"
install -d "$root/usr/share/man/man1" && gzip -9n <"$here/pbxhook.1" >"$root/usr/share/man/man1/pbxhook.1.gz"
install -d "$root/lib/systemd/system"
sed -e 's|/opt/pbxhook/README.md|/usr/share/doc/pbxhook/README.md|' -e 's|/opt/pbxhook|/usr/lib/pbxhook|g' \
  systemd/pbxhook.service >"$root/lib/systemd/system/pbxhook.service"
install -D -m 0644 config/pbxhook.example.yaml "$root/etc/pbxhook/pbxhook.yaml"
install -m 0644 webhooks.ini.example "$root/etc/pbxhook/webhooks.ini"
install -m 0644 config/pbxhook.schema.json "$root/etc/pbxhook/pbxhook.schema.json"
install -D -m 0644 config/pbxhook.rules.yml "$root/usr/share/pbxhook/pbxhook.rules.yml"

install -d "$doc/webhooks" "$doc/examples"
install -m 0644 README.md "$doc/"
install -m 0644 docs/webhooks/*.md "$doc/webhooks/"
install -m 0644 config/*.example.yaml config/*.webhooks.ini "$doc/examples/"
install -m 0644 "$here/copyright" "$doc/copyright"
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/pbxhook"
# A native package's changelog: one entry for the version built.
date=$(date -R -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"})
maintainer="${DEBFULLNAME:-pbxhook contributors} <${DEBEMAIL:-pbxhook@users.noreply.invalid}>"
printf 'pbxhook (%s) unstable; urgency=medium\n\n  * Built by npm run deb from pbxhook %s.\n\n -- %s  %s\n' \
  "$version" "$version" "$maintainer" "$date" | gzip -9n >"$doc/changelog.gz"

install -d "$root/DEBIAN"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$root/DEBIAN/md5sums"
# The addon links libc, libm, libstdc++ and libgcc_s only, which Debian's nodejs needs as well.
depends="nodejs (>= $major), nodejs (<< $((major + 1))), adduser, libc6, libgcc-s1, libstdc++6"
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
  -e "s|@DEPENDS@|$depends|" -e "s|@INSTALLED_SIZE@|$(du -sk --exclude=DEBIAN "$root" | cut -f1)|" \
  "$here/control.in" >"$root/DEBIAN/control"

dpkg-deb --root-owner-group --build "$root" "$deb" >&2
echo "$deb"
