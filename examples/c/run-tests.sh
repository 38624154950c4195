#!/usr/bin/env bash
# The C side of the test suite (`make test-c`, part of `make test`):
#
#  1. builds libmtasts (debug) and installs it into a temporary prefix with `make install`,
#     and checks the install: soname, symlinks, static library, `pkg-config --cflags --libs`;
#  2. builds the C examples, the C test program and the Exim module from that prefix with
#     pkg-config (-Wall -Wextra -Werror), plus AddressSanitizer+UBSan builds and a static link;
#  3. starts the test world (target/debug/mtasts-testworld) and runs every program against it:
#     plainly, under ASan+UBSan (leak detection on), and under valgrind (no errors, no definite
#     leaks; see valgrind.supp for the two ring/SIMD false positives suppressed);
#  4. installs the Exim module with `make install-exim` and runs integrations/exim/tests/run.sh: the module
#     inside a real Exim (`exim -be`), with the installed configuration snippet.
#
# Environment: VALGRIND is the valgrind command (default "valgrind"); set it empty to skip the
# valgrind runs (VALGRIND= make test-c). CARGO as for the Makefile. KEEP_WORK=1 keeps the
# temporary directory. Ends with "N passed, N failed"; exit status 0 when nothing failed.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo=${CARGO:-cargo}
valgrind=${VALGRIND-valgrind}
started=$(date +%s)
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok    $*"; }
fail() { failed=$((failed + 1)); echo "FAIL  $*"; }

work=$(mktemp -d /tmp/mtasts-ctest.XXXXXX)
# Exim runs expansions as its own user: the installed module must be readable by it.
chmod 755 "$work"
world_pid=""
world_in=""
cleanup() {
  if [ -n "$world_pid" ]; then
    exec {world_in}>&- 2>/dev/null || true
    wait "$world_pid" 2>/dev/null || true
  fi
  [ -n "${KEEP_WORK-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# 1. Build and install into a temporary prefix.
"$cargo" build -p mtasts-ffi -p mtasts-testworld --locked
prefix=$work/prefix
make -s install PREFIX="$prefix" FFI_PROFILE=debug CARGO="$cargo" > /dev/null
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs mtasts | xargs)
if [ "$flags" = "-I$prefix/include -L$prefix/lib -lmtasts" ]; then
  pass "pkg-config --cflags --libs mtasts: $flags"
else
  fail "pkg-config --cflags --libs mtasts: got [$flags]"
fi
[ "$(pkg-config --modversion mtasts)" = "$version" ] && pass "pkg-config version $version" ||
  fail "pkg-config --modversion: $(pkg-config --modversion mtasts)"
soname=$(readelf -d "$prefix/lib/libmtasts.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
major=${version%%.*}
[ "$soname" = "libmtasts.so.$major" ] && pass "soname $soname" || fail "soname: [$soname]"
if [ "$(readlink "$prefix/lib/libmtasts.so")" = "libmtasts.so.$major" ] &&
  [ "$(readlink "$prefix/lib/libmtasts.so.$major")" = "libmtasts.so.$version" ] &&
  [ -f "$prefix/lib/libmtasts.a" ] && [ -f "$prefix/include/mtasts.h" ]; then
  pass "installed: include/mtasts.h, lib/libmtasts.so{,.$major,.$version}, lib/libmtasts.a"
else
  fail "install layout"
  ls -lR "$prefix"
fi

# 2. Build the programs (from the install, through pkg-config).
build=$work/build
if make -s -C examples/c BUILD="$build" all sanitize static; then
  pass "examples/c built with -Wall -Wextra -Werror (plain, ASan+UBSan, static)"
else
  fail "examples/c build"
  echo "$passed passed, $failed failed"
  exit 1
fi
# The C example of docs/c-api.md (its first ```c block) compiles as shown.
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on' \
  docs/c-api.md > "$work/readme_example.c"
if [ -s "$work/readme_example.c" ] &&
  cc -std=c11 -Wall -Wextra -Werror -Wpedantic -o "$work/readme_example" "$work/readme_example.c" \
    $(pkg-config --cflags --libs mtasts); then
  pass "the C example of docs/c-api.md compiles with -Wall -Wextra -Werror"
else
  fail "the C example of docs/c-api.md"
fi
# The header from C++ (its extern "C" guards), linked and run.
if command -v c++ > /dev/null 2>&1; then
  printf '%s\n' '#include <mtasts.h>' \
    'int main() { mtasts_config *c = nullptr; bool ok = mtasts_config_new(&c) == MTASTS_OK;' \
    '  mtasts_config_free(c); return ok ? 0 : 1; }' > "$work/header.cc"
  if c++ -std=c++17 -Wall -Wextra -Werror -Wpedantic -o "$work/header-cxx" "$work/header.cc" \
    $(pkg-config --cflags --libs mtasts) -Wl,-rpath,"$prefix/lib" && "$work/header-cxx"; then
    pass "mtasts.h compiles, links and runs as C++"
  else
    fail "mtasts.h as C++"
  fi
fi
if ldd "$build/mtasts-lookup-static" | grep -q libmtasts; then
  fail "mtasts-lookup-static still needs libmtasts.so"
else
  pass "mtasts-lookup-static links libmtasts.a"
fi

# 3. The test world: one JSON line, then it serves until its stdin closes.
coproc WORLD { exec target/debug/mtasts-testworld; }
world_pid=$WORLD_PID
world_in=${WORLD[1]}
read -r line <&"${WORLD[0]}"
dns=$(printf '%s' "$line" | sed -n 's/.*"dns":"\([^"]*\)".*/\1/p')
port=$(printf '%s' "$line" | sed -n 's/.*"https_port":\([0-9]*\).*/\1/p')
ca=$(printf '%s' "$line" | sed -n 's/.*"ca_pem":"\([^"]*\)".*/\1/p')
if [ -z "$dns" ] || [ -z "$port" ] || [ -z "$ca" ]; then
  fail "test world did not start: [$line]"
  echo "$passed passed, $failed failed"
  exit 1
fi
world=(--nameserver "$dns" --trust-roots "$ca" --policy-port "$port")

# run NAME WANT_STATUS WANT_TEXT COMMAND...: runs a program (bounded), checks its exit status
# and that its output contains WANT_TEXT.
run() {
  local name=$1 want=$2 text=$3
  shift 3
  local out=$work/out.txt status=0
  timeout 600 "$@" > "$out" 2>&1 || status=$?
  if [ "$status" -eq "$want" ] && grep -qF -- "$text" "$out"; then
    pass "$name"
  else
    fail "$name (exit $status, wanted $want and \"$text\")"
    tail -n 40 "$out"
  fi
}

# Every program, under a runner prefix ("" plain, ASan build, valgrind).
programs() { # programs LABEL DIR RUNNER...
  local label=$1 dir=$2
  shift 2
  local cache=$work/cache-$label.db
  rm -f "$cache"*
  run "$label: test_mtasts (every function, success and error paths)" 0 " 0 failed" \
    "$@" "$dir/test_mtasts" "${world[@]}"
  run "$label: mtasts-lookup" 0 "s01.mtasts.test              enforce  fetched" \
    "$@" "$dir/mtasts-lookup" "${world[@]}" s01.mtasts.test s02.mtasts.test
  run "$label: mtasts-lookup exit 1 on a fetch failure" 1 "failure: sts-policy-fetch-error" \
    "$@" "$dir/mtasts-lookup" "${world[@]}" s10.mtasts.test
  run "$label: mtasts-lookup exit 2 on an invalid domain" 2 "invalid domain" \
    "$@" "$dir/mtasts-lookup" "${world[@]}" "bad domain"
  run "$label: threads (8 threads share one resolver)" 0 ", 0 errors" \
    "$@" "$dir/threads" "${world[@]}" s01.mtasts.test=enforce s02.mtasts.test=none \
    s05.mtasts.test=enforce s22.mtasts.test=none s10.mtasts.test=none
  run "$label: fork (lookups in children, SQLite cache shared)" 0 \
    "parent sees s06.mtasts.test as cache; 0 failures" \
    "$@" "$dir/fork" "${world[@]}" --cache "$cache" s05.mtasts.test s06.mtasts.test
}

programs plain "$build"
run "plain: mtasts-lookup-static" 0 "s01.mtasts.test              enforce  fetched" \
  "$build/mtasts-lookup-static" "${world[@]}" s01.mtasts.test

# AddressSanitizer + UndefinedBehaviorSanitizer (the C code is instrumented, libmtasts is not;
# LeakSanitizer checks the whole process, Rust allocations included).
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
programs asan "$build/asan"
unset ASAN_OPTIONS UBSAN_OPTIONS

if [ -n "$valgrind" ]; then
  read -r -a vg <<< "$valgrind"
  vg+=(-q --error-exitcode=86 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --suppressions="$root/examples/c/valgrind.supp")
  programs valgrind "$build" "${vg[@]}"
else
  echo "skip  valgrind runs (VALGRIND is empty)"
fi

# 4. The Exim module, installed with `make install-exim`, in a real Exim.
make -s install-exim PREFIX="$prefix" > /dev/null
if out=$(integrations/exim/tests/run.sh "$prefix/lib/mtasts/mtasts_exim.so" "$dns" "$ca" "$port" \
  "$prefix/share/mtasts/exim/mtasts.conf" 2>&1); then
  pass "the Exim \${dlfunc} module in a real Exim ($(printf '%s\n' "$out" | tail -n 1 | sed 's/^exim: //'))"
else
  fail "exim"
  printf '%s\n' "$out" | grep -v '^ok' || true
fi

echo "test-c took $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
