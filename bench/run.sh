#!/usr/bin/env bash
# fairsend benchmark harness: one command from a fresh clone.
#   bench/run.sh            audiences of 10k, 100k and 1M, ratio rounds of 20,000 messages
#                           (about 20 minutes on 2 cores)
#   bench/run.sh --quick    audiences of 1k and 10k, ratio rounds of 5,000 messages (a few minutes)
# Other options are passed to bench/harness.py (--sizes, --messages, --rounds, --postgres URL,
# --only, --bin, --keep; `python3 bench/harness.py --help`).
# Installs what it needs (Debian: postfix for smtp-sink/smtp-source, wrk, openssl for the DKIM
# rows' keys), builds the release binaries, then prints the tables. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v smtp-sink >/dev/null || need+=(postfix)
command -v wrk >/dev/null || need+=(wrk)
command -v psql >/dev/null || need+=(postgresql-client)
command -v openssl >/dev/null || need+=(openssl)
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
