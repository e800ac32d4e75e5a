#!/usr/bin/env bash
# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
#
# examples/gateway against the official client SDKs: installs the pinned
# `openai` and `@modelcontextprotocol/sdk` npm packages (package.json and
# package-lock.json here, `npm ci` from the npm registry) into WORK_DIR,
# starts two gateways on tests/clients/data (--mcp-denial error and
# tool_result) and runs clients.test.mjs against them with node:test.
#
#   clients_test.sh PLANGATE_GATEWAY WORK_DIR
#
# Exits 0 when every test passed, 77 (skipped) when no Node.js >= 20 is
# installed, 1 otherwise (a failed npm ci included: it needs the registry).
# NAME_port is set by start_gateway (lib.sh).
# shellcheck disable=SC2154
set -euo pipefail

GATEWAY=${1:?usage: clients_test.sh PLANGATE_GATEWAY WORK_DIR}
work=${2:?usage: clients_test.sh PLANGATE_GATEWAY WORK_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data=$here/data

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node and npm are not installed (Node.js >= 20 needed)"
  exit 77
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
  echo "SKIP: Node.js $(node --version) is too old (>= 20 needed)"
  exit 77
fi
[[ -x "$GATEWAY" ]] || {
  echo "FAIL: $GATEWAY is not an executable" >&2
  exit 1
}

# The SDKs, exactly as locked; again only when the lock file changed.
mkdir -p "$work"
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" ||
  [[ ! -d "$work/node_modules" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  echo "--- npm ci (openai, @modelcontextprotocol/sdk)"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error) || {
    rm -f "$work/package-lock.json"
    echo "FAIL: npm ci failed (is the npm registry reachable?)" >&2
    exit 1
  }
fi
# ES modules resolve packages from the importing file's directory.
cp "$here/clients.test.mjs" "$work/"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plangate-clients.XXXXXX")
# shellcheck source=tests/gateway/lib.sh
source "$here/../gateway/lib.sh"

files=(--catalog "$data/catalog.json" --keys "$data/keys.json"
  --accounts "$data/accounts.json")
start_gateway gw "${files[@]}" --threads 2
start_gateway agent "${files[@]}" --threads 1 --mcp-denial tool_result

rc=0
PLANGATE_GATEWAY_URL="http://127.0.0.1:$gw_port" \
  PLANGATE_GATEWAY_AGENT_URL="http://127.0.0.1:$agent_port" \
  node --test --test-reporter=spec "$work/clients.test.mjs" || rc=$?
((rc == 0)) || fail "clients.test.mjs failed (status $rc)"
stop_all
echo "PASS: the openai and MCP SDKs against the gateway"
