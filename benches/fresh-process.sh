#!/usr/bin/env bash
# Whole fresh processes on a warm shared cache, as Exim pays them: now section 4 of
# benches/compare (`make bench-compare`), which times the C program benches/fresh-process.c
# (dlopen libmtasts, a resolver from a settings file, one cached lookup) and `mtasts lookup`
# (SQLite, Redis, no cache) interleaved with /bin/true. This runs that section alone.
#
#   benches/fresh-process.sh [RUNS]
set -euo pipefail
exec "$(dirname "$0")/compare" --only fresh-process --runs "${1:-200}"
