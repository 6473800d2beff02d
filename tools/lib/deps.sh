# tools/lib/deps.sh: install the Debian packages evrun needs, when missing.
# Sourced by tools/test and tools/demo.  Uses apt-get as root, sudo
# otherwise; runs `apt-get update` once before the first install.

EVR_BUILD_PACKAGES="gcc make cmake pkg-config libzmq3-dev libczmq-dev liblmdb-dev lmdb-utils
  libmsgpack-dev libcurl4-openssl-dev libyaml-dev libjansson-dev libarchive-dev
  libmicrohttpd-dev libjwt-dev"
# What the tests need beyond the build: the independent Python client of
# tests/interop (Debian's python3 with its zmq and msgpack modules); a
# local registry with htpasswd auth for the image pulls of
# tests/integration/test_registry.sh (docker-registry, apache2-utils, curl); git,
# which a runner runs for `source: {git: ...}` (tests/integration/test_source.sh);
# openssl, which makes the certificate of tests/integration/test_gateway.sh's HTTPS case;
# chromium (headless, with a font) and python3-websocket, which drive the web UI in
# tests/integration/test_gateway_ui.sh; uidmap (newuidmap for a rootless podman's user
# namespace) and slirp4netns (a rootless podman's bridge network) for
# tests/integration/test_rootless.sh.
EVR_TEST_PACKAGES="python3 python3-zmq python3-msgpack docker-registry apache2-utils curl git
  openssl chromium python3-websocket fonts-dejavu-core uidmap slirp4netns"

# evr_missing_packages PKG...: prints the packages that are not installed.
evr_missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# evr_install PKG...: installs the missing ones of PKG...
evr_install() {
  local missing
  missing=$(evr_missing_packages "$@")
  [ -z "$missing" ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "evrun: missing packages:" $missing >&2
      echo "evrun: install them as root: apt-get install -y" $missing >&2
      return 1
    fi
  fi
  echo "evrun: installing" $missing >&2
  if [ -z "${EVR_APT_UPDATED:-}" ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    EVR_APT_UPDATED=1
  fi
  # shellcheck disable=SC2086
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
}
