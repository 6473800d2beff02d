# exec_lib.sh: sourced by test_exec.sh, test_exec_flow.sh and
# test_exec_job.sh after they set bin and src: the podman service's
# settings, a temporary directory (removed at the exit unless EVR_KEEP_TMP
# is set), the check helpers and the helpers their cases share.
export CONTAINERS_CONF=$src/tools/podman/containers.conf
: "${EVRUN_PODMAN_URL:=unix:///tmp/evr-it-podman/podman.sock}"
export EVRUN_PODMAN_URL
tmp=$(mktemp -d /tmp/evr-it-XXXXXX)
httpd_pid=
mounted=
trap '[ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null; [ -n "$mounted" ] && umount "$mounted"; [ -z "${EVR_KEEP_TMP:-}" ] && rm -rf "$tmp"' EXIT
fails=0 passes=0 case_name=

. "$(dirname "${BASH_SOURCE[0]}")/../support/check.sh"

# run NAME FILE [runner args...]: runs the pipeline; sets $out $err $rc $job $state
run() {
  local name=$1 file=$2; shift 2
  state=$tmp/$name
  out=$tmp/$name.out err=$tmp/$name.err
  "$bin/evrun-runner" --exec "$file" --state-dir "$state" "$@" > "$out" 2> "$err"
  rc=$?
  job=$(sed -n 's/^evrun-runner: job \([0-9A-Z]*\),.*/\1/p' "$out" | head -n 1)
}

# left_behind: containers and volumes of $job still in podman
left_behind() {
  local id
  id=$(echo "$job" | tr 'A-Z' 'a-z')
  { podman ps -a --format '{{.Names}}'; podman volume ls --format '{{.Name}}'; } | grep -c "evrun-$id" || true
}

verified() { "$bin/evrun-replay" "$state" --verify > /dev/null; }

pipeline() {   # pipeline NAME: writes stdin to $tmp/NAME.yml
  cat > "$tmp/$1.yml"
}

# process_left: units and the workspace of $job still in $state (the
# process executor's, as left_behind is podman's)
process_left() {
  ls "$state/units" "$state/work" 2>/dev/null | grep -ci "$job" || true
}
