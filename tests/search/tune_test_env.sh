# Sourced by the `deepscan tune` test scripts (tests/search/*_test.sh BUILD_DIR SOURCE_DIR): sets
# $build, $src and $deepscan, exits 77 (CTest "skipped") when /usr/bin/python3 lacks one of the
# modules named in $tune_test_modules (default: optuna), makes $tmp (removed at exit) and in it
# $tmp/store.h5, a tiny synthetic crop store of $tune_test_groups x $tune_test_per_group faces.
set -uo pipefail
build=$1
src=$2
deepscan="$build/deepscan"
/usr/bin/python3 -c "import ${tune_test_modules:-optuna}" 2>/dev/null ||
  { echo "skip: /usr/bin/python3 lacks ${tune_test_modules:-optuna} (apt-get install python3-optuna python3-psycopg2)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/tests/tiny_crop_store" "$tmp/store.h5" "${tune_test_groups:-4}" "${tune_test_per_group:-2}" ||
  { echo "FAIL: tiny_crop_store"; exit 1; }
