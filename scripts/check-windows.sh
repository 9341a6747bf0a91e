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

# The WDK build's panic handler is ksring's own (KeBugCheckEx with the source location, in
# src/sys/kernel.rs), for both Windows builds: wdk-panic's `loop {}` must not come back into the
# Windows dependency graph (two handlers would not link; an endless loop at DISPATCH_LEVEL is
# what WINDOWS-AUDIT F6 found).
echo "==> ksring's Windows dependency graph has no wdk-panic, and the driver one #[panic_handler]"
if cargo tree --target x86_64-pc-windows-msvc -p ksring -e normal --prefix none | grep -E '^wdk-panic'; then
    echo "check-windows: wdk-panic is a dependency of the Windows build again" >&2
    exit 1
fi
handlers=$(grep -rn '#\[panic_handler\]' src | wc -l)
[ "$handlers" -eq 1 ] || { echo "check-windows: $handlers #[panic_handler]s in src/ (want 1)" >&2; exit 1; }
grep -q 'KeBugCheckEx(KSRING_PANIC' src/sys/kernel.rs || { echo "check-windows: the panic handler does not bug-check" >&2; exit 1; }
echo "==> one panic handler, KeBugCheckEx('KSRP', file, length, line, column)"
