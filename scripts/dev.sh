#!/usr/bin/env bash
# `make dev`: the Worker on 127.0.0.1 with the demo config in local KV.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh
PORT=${PORT:-8787}

# The secrets for local runs (a real deploy uses `wrangler secret put`): the transaction-id secret
# and the admin API's token.
touch .dev.vars
if ! grep -q '^TOKEN_SECRET=' .dev.vars; then
  echo "TOKEN_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')" >> .dev.vars
  echo "==> wrote a random TOKEN_SECRET to .dev.vars"
fi
if ! grep -q '^ADMIN_TOKEN=' .dev.vars; then
  echo "ADMIN_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')" >> .dev.vars
  echo "==> wrote a random ADMIN_TOKEN to .dev.vars"
fi
admin_token=$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars)

echo "==> pushing demo/config.json to local KV"
target/release/clickgate config push demo/config.json --local

base="http://127.0.0.1:$PORT"
cat <<MSG

==> starting the Worker on $base (Ctrl-C stops it). Try:

  redirects (302 to the offer, every macro filled in):
    curl -i '$base/c?offer_id=1001&aff_id=net-7&sub1=spring%20promo&source_id=feed-3'
    curl -i '$base/c/1001/net-7?sub2=a%26b'

  blocked (403, error 1021: the client IP is on the demo blocklist):
    curl -i -H 'CF-Connecting-IP: 198.51.100.23' '$base/c?offer_id=1001&aff_id=net-7'
    curl -i -H 'CF-Connecting-IP: 198.51.100.23' -H 'Accept: text/html' '$base/c?offer_id=1001&aff_id=net-7'

  refused (400 names the parameter; 404 for an unknown offer):
    curl -i '$base/c?offer_id=1001'
    curl -i '$base/c?offer_id=9999&aff_id=net-7'

  fraud rules (demo/rules.json: bots and hosting networks blocked on offer 1001, the lead preset in
  monitor mode on 1002). In another terminal:
    target/release/clickgate config push demo/rules.json --local
    curl -i '$base/c?offer_id=1001&aff_id=net-7'                       # curl is automation: 403, 1021
    curl -i -A 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Version/17.4 Mobile/15E148 Safari/604.1' \\
         '$base/c?offer_id=1001&aff_id=net-7'                           # a phone browser: 302
    curl -i '$base/c?offer_id=1002&aff_id=net-7'                       # monitor mode: 302, logged as declined
  here the Worker re-reads KV before answering a request that finds its copy a second old, so a
  config pushed with --local answers the next request (a deploy re-reads every 30 s, after answering).

  a conversion postback for a click (paste the tid from a redirect's Location):
    curl -s '$base/postback?transaction_id=TID&event=sale&amount=9.90'

  the admin API (token from .dev.vars): impose, then lift, net-7's flood block for today:
    curl -s -X POST -H 'Authorization: Bearer $admin_token' -d '{"by": "you"}' '$base/admin/networks/net-7/block'
    curl -s -X POST -H 'Authorization: Bearer $admin_token' -d '{"by": "you"}' '$base/admin/networks/net-7/unblock'

  the fraud report (counts reach it within a second of the clicks) and one click explained:
    open $base/admin/   (any user name; the password is the admin token: $admin_token)
    curl -s -H 'Authorization: Bearer $admin_token' '$base/admin/report?group_by=offer,affiliate&format=csv'
    CLICKGATE_ADMIN_TOKEN=$admin_token target/release/clickgate report --url $base --group-by affiliate
    CLICKGATE_ADMIN_TOKEN=$admin_token target/release/clickgate explain TID --url $base

  the feeds a config names (docs/operations.md): run the Cron Trigger's handler, then see what it did:
    curl -s '$base/__scheduled?cron=*/5+*+*+*+*'
    CLICKGATE_ADMIN_TOKEN=$admin_token target/release/clickgate feeds status --url $base

  decision log lines appear below, one JSON object per click.

MSG
# A pushed config in force at once: a one-second refresh, read before the answer (CONFIG_REFRESH_WAITS).
exec wrangler dev --local --test-scheduled --ip 127.0.0.1 --port "$PORT" \
  --var CONFIG_REFRESH_SECONDS:1 --var CONFIG_REFRESH_WAITS:true
