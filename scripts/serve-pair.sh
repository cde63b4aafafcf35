# Sourced by bench.sh and profile.sh: serves clickgate (demo config, KV under a temp dir), the bare
# redirect Worker and the bare Worker with a log line per click, in workerd on their own sockets, for
# as long as the caller runs at most.
#   serve_pair SECONDS [rust]  sets state (the temp dir, removed on exit), clickgate_url, bare_url,
#                       bare_logging_url, and clickgate_pid, bare_pid, bare_logging_pid (their
#                       workerd processes); the runtimes' stderr (faults) goes to $state/errors.log.
#                       With `rust`, also the bare Rust Workers of scripts/build-bare-rust-worker.sh:
#                       bare_rust_url, bare_rust_logging_url, bare_rust_pid, bare_rust_logging_pid
listener_pid() { ss -ltnpH "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n1; }
port_of() { sed -E 's#^http://[^:]+:([0-9]+).*#\1#' <<<"$1"; }

serve_pair() {
  state=$(mktemp -d)
  server_pid=""
  trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$state"' EXIT
  target/release/clickgate config push demo/config.json --local --persist-to "$state" >/dev/null 2>&1
  mkfifo "$state/ready"
  # serve.mjs stops when its stdin closes; `sleep` holds it open for $1 seconds at most.
  local rust=()
  [ "${2:-}" = rust ] && rust=(--bare-rust-port 0 --bare-rust-logging-port 0)
  sleep "$1" 2>/dev/null | node tests/e2e/support/serve.mjs --persist "$state" --port 0 --bare-port 0 --bare-logging-port 0 "${rust[@]}" \
    --var TOKEN_SECRET=bench-secret-bench-secret-bench-secret-bench --var CONFIG_REFRESH_SECONDS=1 \
    >"$state/ready" 2>"$state/errors.log" &
  server_pid=$!
  exec 3<"$state/ready"
  read -r _ clickgate_url <&3
  read -r _ bare_url <&3
  read -r _ bare_logging_url <&3
  bare_rust_url="" bare_rust_logging_url="" bare_rust_pid="" bare_rust_logging_pid=""
  if [ "${2:-}" = rust ]; then
    read -r _ bare_rust_url <&3
    read -r _ bare_rust_logging_url <&3
  fi
  # Drain the decision log so the Worker never blocks on a full pipe.
  cat <&3 >/dev/null &
  clickgate_pid=$(listener_pid "$(port_of "$clickgate_url")")
  bare_pid=$(listener_pid "$(port_of "$bare_url")")
  bare_logging_pid=$(listener_pid "$(port_of "$bare_logging_url")")
  if [ -n "$bare_rust_url" ]; then
    bare_rust_pid=$(listener_pid "$(port_of "$bare_rust_url")")
    bare_rust_logging_pid=$(listener_pid "$(port_of "$bare_rust_logging_url")")
  fi
}
