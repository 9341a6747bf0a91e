#!/usr/bin/env bash
# Installs the Debian packages the tests and the cross build use (idempotent, no prompts).
#   gcc-mingw-w64-x86-64   the mingw-w64 headers and compiler: ksabi's second layout oracle
#   rustc-web cargo-web rust-web-src lld-22   Debian's Rust and LLD 22: the ksring.sys cross build
#   qemu-system-x86 xorriso libwin-hivex-perl xz-utils bc   the ReactOS lab (scripts/reactos-lab.sh)
set -euo pipefail
packages=(gcc-mingw-w64-x86-64 rustc-web cargo-web rust-web-src lld-22 qemu-system-x86 xorriso libwin-hivex-perl xz-utils bc)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    echo "setup-host: all packages present"
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup-host: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
