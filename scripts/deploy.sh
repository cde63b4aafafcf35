#!/usr/bin/env bash
# A deploy in one command: the KV namespace created and its id written into wrangler.toml (once),
# the Worker's secrets set, the config pushed, the Worker deployed.
#
#   scripts/deploy.sh CONFIG_FILE [--env staging] [--dry-run]
#
# Needs `npx wrangler login` (or CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID, as in CI) and the
# CLI (`make cli`). Secrets:
#   TOKEN_SECRET  the transaction-id secret: kept when the Worker has it (a new one would void the
#                 transaction ids out there); else taken from the environment, or made (openssl).
#   ADMIN_TOKEN   the admin API's token: kept when set; else from the environment, or made and
#                 printed once.
#   NAME          each Worker secret the config names ({"secret": "NAME"}): from the environment
#                 variable NAME, unless the Worker has it.
# --dry-run prints the wrangler commands (secret values hidden) and changes nothing, not even
# wrangler.toml: what a first deploy would do. WRANGLER and CLICKGATE override the tools' paths.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/deploy.sh CONFIG_FILE [--env staging] [--dry-run]" >&2; exit 2; }
config="" env="" dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --env) [ $# -ge 2 ] || usage; env="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) usage ;;
    *) [ -z "$config" ] || usage; config="$1"; shift ;;
  esac
done
[ -n "$config" ] || usage
case "$env" in ""|staging) ;; *) echo "deploy.sh: --env is staging or nothing (production)" >&2; exit 2 ;; esac

WRANGLER=${WRANGLER:-node_modules/.bin/wrangler}
CLICKGATE=${CLICKGATE:-target/release/clickgate}
env_args=()
[ -z "$env" ] || env_args=(--env "$env")
env_text=${env:+ --env $env}
# The placeholder ids wrangler.toml ships with: local runs accept them, a deploy needs real ones.
if [ -z "$env" ]; then placeholder=00000000000000000000000000c0ffee; else placeholder=00000000000000000000000000057a9e; fi

# Runs a wrangler command, or in a dry run prints it. Secret values never reach the output.
run() {
  if [ "$dry" = 1 ]; then
    echo "+ wrangler $*"
  else
    "$WRANGLER" "$@"
  fi
}

echo "==> checking $config"
checked=$("$CLICKGATE" config validate "$config")
echo "$checked"
# The Worker secrets the document names, as `config validate` lists them.
named=$(printf '%s\n' "$checked" | sed -n 's/.*names Worker secrets \(.*\) (taken as set here.*/\1/p' | tr -d ',')

echo "==> the KV namespace CLICKGATE_CONFIG${env:+ ($env)}"
if grep -q "$placeholder" wrangler.toml; then
  if [ "$dry" = 1 ]; then
    run kv namespace create CLICKGATE_CONFIG ${env_args[@]+"${env_args[@]}"}
    echo "  (would write the id it prints into wrangler.toml in place of $placeholder)"
  else
    created=$(run kv namespace create CLICKGATE_CONFIG ${env_args[@]+"${env_args[@]}"})
    echo "$created"
    id=$(printf '%s\n' "$created" | grep -oE '[0-9a-f]{32}' | head -n 1)
    [ -n "$id" ] || { echo "deploy.sh: no namespace id in wrangler's answer" >&2; exit 3; }
    sed -i.bak "s/$placeholder/$id/" wrangler.toml && rm -f wrangler.toml.bak
    echo "  wrote id $id into wrangler.toml: commit it"
  fi
else
  echo "  wrangler.toml already names it"
fi

echo "==> secrets"
# The secrets the Worker already has (none before its first deploy).
have=""
if [ "$dry" = 0 ]; then
  have=$("$WRANGLER" secret list ${env_args[@]+"${env_args[@]}"} 2>/dev/null | grep -oE '"name": *"[A-Za-z0-9_]+"' | sed 's/.*"\([A-Za-z0-9_]*\)"$/\1/' || true)
fi
has() { printf '%s\n' "$have" | grep -qx "$1"; }
# Sets a secret from stdin; the value goes to wrangler on its standard input only.
put() {
  if [ "$dry" = 1 ]; then
    cat >/dev/null
    echo "+ wrangler secret put $1$env_text < (the value)"
  else
    "$WRANGLER" secret put "$1" ${env_args[@]+"${env_args[@]}"} >/dev/null
    echo "  set $1"
  fi
}
if has TOKEN_SECRET; then
  echo "  TOKEN_SECRET is set: kept"
else
  printf '%s' "${TOKEN_SECRET:-$(openssl rand -base64 48 | tr -d '\n')}" | put TOKEN_SECRET
fi
if has ADMIN_TOKEN; then
  echo "  ADMIN_TOKEN is set: kept"
else
  admin=${ADMIN_TOKEN:-$(openssl rand -base64 32 | tr -d '\n/+=')}
  printf '%s' "$admin" | put ADMIN_TOKEN
  if [ -z "${ADMIN_TOKEN:-}" ] && [ "$dry" = 0 ]; then
    echo "  the admin token (shown once; keep it as CLICKGATE_ADMIN_TOKEN): $admin"
  fi
fi
for name in $named; do
  if has "$name"; then
    echo "  $name is set: kept"
  elif [ -n "${!name:-}" ]; then
    printf '%s' "${!name}" | put "$name"
  elif [ "$dry" = 1 ]; then
    echo "+ wrangler secret put $name$env_text < (\$$name, not set here)"
  else
    echo "deploy.sh: the config names the Worker secret $name: set it in the environment (export $name=...) and run again" >&2
    exit 1
  fi
done

echo "==> the config"
if [ "$dry" = 1 ]; then
  echo "+ clickgate config push $config --remote$env_text"
else
  "$CLICKGATE" config push "$config" --remote ${env_args[@]+"${env_args[@]}"}
fi

echo "==> the Worker"
run deploy ${env_args[@]+"${env_args[@]}"}
[ "$dry" = 1 ] || echo "==> done: curl -i https://<your route>/healthz shows the config in force"
