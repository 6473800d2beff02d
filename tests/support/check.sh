# check.sh: sourced by the test scripts.  check WHAT CMD...: runs CMD and
# counts it in $passes, or in $fails with "FAILED: CASE: WHAT" on stderr
# ($case_name, when the script has cases).
check() {
  local what=$1; shift
  if "$@"; then
    passes=$((passes + 1))
  else
    fails=$((fails + 1))
    echo "FAILED: ${case_name:+$case_name: }$what" >&2
  fi
}
