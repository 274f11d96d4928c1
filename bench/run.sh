#!/usr/bin/env bash
# fairsend benchmark harness: one command from a fresh clone.
#   bench/run.sh            audiences of 10k, 100k and 1M (about 15 minutes on 2 cores)
#   bench/run.sh --quick    audiences of 1k and 10k (about 2 minutes)
# Other options are passed to bench/harness.py (--sizes, --postgres URL, --keep).
# Installs what it needs (Debian: postfix for smtp-sink/smtp-source, wrk), builds the release
# binaries, then prints one table. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v smtp-sink >/dev/null || need+=(postfix)
command -v wrk >/dev/null || need+=(wrk)
command -v psql >/dev/null || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}" >&2
    apt-get update -qq
    # postfix only for its benchmark tools: no mail system is configured or started.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

echo "== building (release)" >&2
cargo build --release --locked --quiet
cargo bench --locked --no-run --quiet 2>/dev/null

exec python3 bench/harness.py "$@"
