#!/bin/bash
# Entry point of the CI Grafana stand-in, as the official image's /run.sh starts the server. Like that script, a
# GF_<NAME>__FILE variable becomes GF_<NAME> with the file's content (Docker secrets: the admin password).
set -euo pipefail
for file_var in $(env | sed -n 's/^\(GF_[A-Za-z0-9_]*__FILE\)=.*/\1/p'); do
  var=${file_var%__FILE}
  if [[ -n ${!var:-} ]]; then
    echo "run.sh: both $var and $file_var are set; use one" >&2
    exit 1
  fi
  export "$var=$(<"${!file_var}")"
  unset "$file_var"
done
exec grafana server --homepath="$GF_PATHS_HOME" --config="$GF_PATHS_CONFIG" --packaging=docker "$@" \
  cfg:default.log.mode="console" \
  cfg:default.paths.data="$GF_PATHS_DATA" \
  cfg:default.paths.logs="$GF_PATHS_LOGS" \
  cfg:default.paths.plugins="$GF_PATHS_PLUGINS" \
  cfg:default.paths.provisioning="$GF_PATHS_PROVISIONING"
