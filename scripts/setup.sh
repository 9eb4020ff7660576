#!/usr/bin/env bash
# Installs the Debian packages in deps/debian-packages.txt that are missing.
# As root it runs apt-get; otherwise it says what to install and fails only
# if a tool the build needs is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg _; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done < deps/debian-packages.txt

# Node.js and npm run the server tests (tests/server, the official OpenAI
# client). Node 18 or later will do (Debian 12 has 18), or NodeSource's (whose
# nodejs bundles npm and conflicts with Debian's npm package), so they are
# installed only when the commands are missing, not from the list above.
for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        missing+=(nodejs npm)
        break
    fi
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run 'sudo apt-get install ${missing[*]}' (or make as root)" >&2
    for tool in cc cmake ninja; do
        command -v "$tool" >/dev/null || { echo "setup: $tool not found" >&2; exit 1; }
    done
fi
