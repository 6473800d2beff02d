# rootless_lib.sh: sourced by test_rootless.sh after it sets bin and src: a
# rootless podman service of an unprivileged user, made from nothing on a
# Debian 12 machine as root, and ended (by pid) with everything it made.
#
#   rl_setup      the packages (tools/lib/deps.sh), the user $rl_user (a
#                 system user, made when missing, with a /etc/subuid and
#                 /etc/subgid range when it has none), a directory $rl_dir
#                 of that user's (storage, run directory, configuration:
#                 nothing in a home directory), the test image in the
#                 user's storage (tools/build-test-image as the user), and
#                 `podman system service` as the user on
#                 $rl_dir/run/podman/podman.sock, the socket the runner
#                 finds by default through XDG_RUNTIME_DIR ($rl_url);
#                 copies of evrun-runner, evrun-replay and evrun-job of
#                 $bin in $rl_bin
#   as_user CMD   runs CMD as the user, with only the environment the
#                 user's podman needs (plus the VAR=VALUE words given
#                 before CMD)
#   rl_teardown   ends the service and podman's pause process by their
#                 pids, removes $rl_dir (the user and its ranges stay, for
#                 the next run)
#
# This host's settings (podman 4.3.1, cgroups v1 hybrid): runc (crun
# refuses hybrid cgroups), cgroupfs (no systemd user session), file
# events (no journal of the user's), the vfs storage driver (no
# fuse-overlayfs needed; the test image is 2 MB), ulimits within the hard
# limits; all in files of $rl_dir given in CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF, so no configuration of root or of a home
# directory is read or written.

rl_user=${EVR_ROOTLESS_USER:-evrun-rootless}
rl_dir= rl_pid= rl_url= rl_bin=

# rl_range: the first id of a free 65536-id range in /etc/subuid and
# /etc/subgid (after the highest range there, at least 100000)
rl_range() {
  cat /etc/subuid /etc/subgid 2>/dev/null |
    awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }'
}

rl_user_setup() {
  if ! id "$rl_user" > /dev/null 2>&1; then
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin "$rl_user" || return 1
  fi
  local first
  if ! grep -q "^$rl_user:" /etc/subuid 2>/dev/null || ! grep -q "^$rl_user:" /etc/subgid 2>/dev/null; then
    first=$(rl_range)
    usermod --add-subuids "$first-$((first + 65535))" --add-subgids "$first-$((first + 65535))" \
      "$rl_user" || return 1
  fi
}

# rl_as: the command prefix that runs as the user (an array, not a
# function, so that `"${rl_as[@]}" CMD &` sets $! to CMD's own pid)
rl_as=()
as_user() {
  local vars=()
  while [ $# -gt 0 ] && [[ $1 == *=* ]]; do vars+=("$1"); shift; done
  "${rl_as[@]}" ${vars[@]+"${vars[@]}"} "$@"
}

rl_setup() {
  . "$src/tools/lib/deps.sh"
  evr_install podman runc catatonit uidmap slirp4netns busybox-static curl || return 1
  rl_user_setup || { echo "rootless: could not make the user $rl_user" >&2; return 1; }
  rl_dir=$(mktemp -d /tmp/evr-rl-XXXXXX) || return 1
  mkdir -p "$rl_dir/run/podman" "$rl_dir/home" "$rl_dir/storage"
  cat > "$rl_dir/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  cat > "$rl_dir/storage.conf" <<EOF
[storage]
driver = "vfs"
rootless_storage_path = "$rl_dir/storage"
EOF
  # copies of what the user runs: a clone under a directory closed to
  # others (root's home) would keep the user out of the originals
  mkdir -p "$rl_dir/bin" "$rl_dir/tools/lib"
  cp "$bin/evrun-runner" "$bin/evrun-replay" "$bin/evrun-job" "$rl_dir/bin/" || return 1
  cp "$src/tools/build-test-image" "$rl_dir/tools/" && cp "$src/tools/lib/deps.sh" "$rl_dir/tools/lib/" ||
    return 1
  rl_bin=$rl_dir/bin
  chown -R "$rl_user:" "$rl_dir"
  rl_as=(setpriv --reuid="$rl_user" --regid="$rl_user" --init-groups --reset-env --
         env -C "$rl_dir" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$rl_dir/home"
         XDG_RUNTIME_DIR="$rl_dir/run" XDG_CONFIG_HOME="$rl_dir/home/.config"
         XDG_DATA_HOME="$rl_dir/home/.local/share"
         CONTAINERS_CONF="$rl_dir/containers.conf" CONTAINERS_STORAGE_CONF="$rl_dir/storage.conf"
         ${ASAN_OPTIONS+ASAN_OPTIONS="$ASAN_OPTIONS"} ${UBSAN_OPTIONS+UBSAN_OPTIONS="$UBSAN_OPTIONS"})
  chmod 700 "$rl_dir" "$rl_dir/run"
  as_user "$rl_dir/tools/build-test-image" 2> "$rl_dir/image.log" ||
    { cat "$rl_dir/image.log" >&2; return 1; }
  rl_url=unix://$rl_dir/run/podman/podman.sock
  "${rl_as[@]}" podman system service --time=0 "$rl_url" > "$rl_dir/podman.log" 2>&1 < /dev/null &
  rl_pid=$!
  local i
  for i in $(seq 1 100); do
    curl -s -m 2 --unix-socket "$rl_dir/run/podman/podman.sock" http://d/v4.0.0/libpod/_ping 2>/dev/null |
      grep -q OK && return 0
    kill -0 "$rl_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "rootless: the service did not answer; its log:" >&2
  tail -n 20 "$rl_dir/podman.log" >&2
  return 1
}

rl_teardown() {
  [ -n "$rl_dir" ] || return 0
  local p
  if [ -n "$rl_pid" ]; then
    kill "$rl_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$rl_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$rl_pid" 2>/dev/null
    wait "$rl_pid" 2>/dev/null
  fi
  # podman's pause process holds the user namespace: it was started for
  # this directory's podman, and its pid is in a file there
  p=$rl_dir/run/libpod/tmp/pause.pid
  if [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$(cat "$p")" 2>/dev/null || break; sleep 0.1; done
  fi
  [ -n "${EVR_KEEP_TMP:-}" ] && { echo "kept $rl_dir" >&2; return 0; }
  rm -rf "$rl_dir"
}
