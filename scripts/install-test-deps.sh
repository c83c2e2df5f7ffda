#!/usr/bin/env bash
# Installs, on Debian or Ubuntu, every program the test suite runs (then `npm test` is all):
#   redis-server          Redis (the suite starts its own when nothing answers at REDIS_URL)
#   postgresql            initdb and pg_ctl (a throwaway server when nothing answers at PG_TEST_URL)
#   chromium              the token pages' browser tests (CHROMIUM_PATH points elsewhere if need be)
#   git, curl             the end-to-end tests, as users run them
#   git-credential-oauth  the git credential helper the OAuth tests drive
# Idempotent: installs only what is missing, and does nothing (not even apt-get update) when
# everything is there. Runs apt-get through sudo unless it runs as root.
#
#   scripts/install-test-deps.sh          install what is missing
#   scripts/install-test-deps.sh --check  only say what is missing (exit 1 if anything is)
set -euo pipefail

# package:program — the program (or file) that shows the package is there.
wanted=(
  redis-server:redis-server
  postgresql:/usr/lib/postgresql/*/bin/initdb
  chromium:/usr/bin/chromium
  git:git
  curl:curl
  git-credential-oauth:git-credential-oauth
)

present() {
  local program=$1
  if [[ $program == /* ]]; then
    # shellcheck disable=SC2086 # the glob is meant
    compgen -G "$program" >/dev/null
  else
    command -v "$program" >/dev/null 2>&1
  fi
}

missing=()
for entry in "${wanted[@]}"; do
  package=${entry%%:*}
  present "${entry#*:}" || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "Everything the tests need is installed."
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  printf 'missing: %s\n' "${missing[@]}"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No apt-get here: install these packages (or their equivalents) yourself: ${missing[*]}" >&2
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
echo "Installing from the distribution: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "Installed: ${missing[*]}"
