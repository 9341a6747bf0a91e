#!/usr/bin/env bash
# Type-checks the Windows side of the user-mode tools on Linux: ksctl with ksclient's Win32
# backend (windows-sys: CM_Get_Device_Interface_ListW, CreateFileW, KsCreatePin, overlapped
# DeviceIoControl, CancelIoEx) for x86_64-pc-windows-msvc. Nothing is linked or run: that needs
# Windows (.github/workflows/windows.yml).
#
# Uses Debian's rustc-web + rust-web-src (scripts/cross-build.sh installs them) because rustup's
# toolchains here cannot build std for Windows; -Zbuild-std builds it from source.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
for tool in /usr/bin/rustc /usr/bin/cargo; do
    [ -x "$tool" ] || { echo "check-windows: $tool missing (run scripts/setup-host.sh)" >&2; exit 1; }
done
echo "==> cargo check -p ksctl --target x86_64-pc-windows-msvc ($(/usr/bin/rustc --version))"
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo check -p ksctl -p ksclient --lib --bins \
    --target x86_64-pc-windows-msvc -Zbuild-std=std,panic_abort --target-dir target/wincheck
echo "==> the Windows backend type-checks"
