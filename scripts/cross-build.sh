#!/usr/bin/env bash
# Builds a real ksring.sys (PE32+, x86_64-pc-windows-msvc) on Linux and checks the image.
#
#   scripts/cross-build.sh            install the toolchain if missing, build, check
#   scripts/cross-build.sh --check    only check an existing image (target/cross/ksring.sys)
#
# Toolchain (see ../shared/docs/CROSSBUILD.md): Debian's rustc-web/cargo-web with rust-web-src of the
# same version (so -Zbuild-std can build core/alloc), and lld-link-22. rustup's toolchains cannot
# build core for Windows. The wdk-* crates are left out with --cfg ksring_cross: they need a Windows
# host. The linker flags are the WDM set wdk-build would emit on Windows.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out_dir="$root/target/cross"
image="$out_dir/ksring.sys"
target=x86_64-pc-windows-msvc
# The image's size ceiling (README, "Image size"): growth past it is a decision, not a drift.
image_budget=${KSRING_IMAGE_BUDGET:-69632}

say() { printf '==> %s\n' "$*"; }
fail() { printf 'cross-build: FAILED: %s\n' "$*" >&2; exit 1; }

install_toolchain() {
    local need=()
    for pkg in rustc-web cargo-web rust-web-src lld-22 gcc-mingw-w64-x86-64; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
    done
    if ((${#need[@]})); then
        say "installing ${need[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    local rustc_v src_v
    rustc_v=$(dpkg-query -W -f='${Version}' rustc-web)
    src_v=$(dpkg-query -W -f='${Version}' rust-web-src)
    [ "$rustc_v" = "$src_v" ] || fail "rustc-web $rustc_v and rust-web-src $src_v differ; -Zbuild-std needs the same version"
    say "toolchain: $(/usr/bin/rustc --version), $(lld-link-22 --version | head -n1)"
}

build() {
    local link_args=(/DRIVER /SUBSYSTEM:NATIVE /ENTRY:DriverEntry /NODEFAULTLIB /INTEGRITYCHECK /RELEASE
        /MANIFEST:NO /NXCOMPAT /DYNAMICBASE /OPT:REF,ICF)
    local rustflags="--cfg ksring_cross -C linker=lld-link-22"
    for a in "${link_args[@]}"; do rustflags+=" -C link-arg=$a"; done
    say "building ksring.sys for $target"
    # Full paths keep rustup's proxies (and rust-toolchain.toml) out of this build.
    (cd "$root" && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="$rustflags" \
        /usr/bin/cargo build --release --lib -p ksring --target "$target" --target-dir "$out_dir" \
        -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem)
    cp "$out_dir/$target/release/ksring.dll" "$image"
    say "image: $image ($(stat -c %s "$image") bytes)"
}

# The routines and variables src/sys declares as kernel imports: `fn Name(` or `static Name:` with a
# capitalised name.
declared_imports() {
    grep -hoE '^\s*(pub )?(fn [A-Z][A-Za-z0-9_]*\(|static [A-Z][a-z][A-Za-z0-9_]*:)' "$root/src/sys/imports.rs" "$root/src/sys/kernel.rs" \
        | sed -E 's/.*(fn|static) ([A-Za-z0-9_]+)[(:]/\2/' | sort -u
}

check() {
    [ -f "$image" ] || fail "no image at $image"
    local objdump=x86_64-w64-mingw32-objdump
    command -v "$objdump" >/dev/null || objdump=objdump
    local dump
    dump=$("$objdump" -p "$image")

    grep -q 'file format pei-x86-64' <<<"$dump" || fail "not a PE32+ x86-64 image"
    grep -qE '^Subsystem\s+00000001' <<<"$dump" || fail "subsystem is not native (1)"
    grep -qE '^Magic\s+020b' <<<"$dump" || fail "optional header is not PE32+"

    local dllchar
    dllchar=$(awk '/^DllCharacteristics/ {print $2}' <<<"$dump")
    (( (16#$dllchar & 0x80) != 0 )) || fail "DllCharacteristics $dllchar lacks FORCE_INTEGRITY (0x80)"
    (( (16#$dllchar & 0x100) != 0 )) || fail "DllCharacteristics $dllchar lacks NX_COMPAT (0x100)"
    grep -qE '^\s*[0-9]+ \.reloc' < <("$objdump" -h "$image") || fail "no .reloc section"

    # Entry point = the exported DriverEntry: find its ordinal, then that ordinal's RVA.
    local entry image_base ordinal rva
    entry=$(awk '/^AddressOfEntryPoint/ {print $2}' <<<"$dump")
    image_base=$(awk '/^ImageBase/ {print $2}' <<<"$dump")
    ordinal=$(awk '/\[Ordinal\/Name Pointer\] Table/ {t=1; next}
                   t && $NF == "DriverEntry" {l = $0; gsub(/[][]/, " ", l); split(l, f); print f[1]; exit}' <<<"$dump")
    [ -n "$ordinal" ] || fail "DriverEntry is not exported"
    rva=$(awk -v ord="$ordinal" '/^Export Address Table -- Ordinal Base/ {t=1; next}
              t && /Export RVA/ {l = $0; gsub(/[][]/, " ", l); split(l, f); if (f[1] + 0 == ord + 0) {print $(NF-2); exit}}' <<<"$dump")
    [ -n "$rva" ] || fail "cannot read DriverEntry's RVA"
    (( 16#$entry == 16#$rva )) || fail "entry point $entry is not DriverEntry ($rva)"

    # Import modules: kernel only.
    local modules
    modules=$(awk '/DLL Name:/ {print $3}' <<<"$dump" | sort -u)
    local allowed=" ntoskrnl.exe hal.dll ks.sys "
    for m in $modules; do
        [[ "$allowed" == *" $m "* ]] || fail "import from $m is not allowed (only:$allowed)"
    done

    # Every declared routine is imported (and so really used by the driver).
    local imported missing=()
    imported=$(awk '/DLL Name:/ {dll=$3; next} /^$/ {dll=""} dll && /^[[:space:]]+[0-9a-f]+[[:space:]]+[0-9]+[[:space:]]+[A-Za-z_]/ {print $NF}' <<<"$dump" | sort -u)
    while read -r name; do
        grep -qx "$name" <<<"$imported" || missing+=("$name")
    done < <(declared_imports)
    ((${#missing[@]} == 0)) || fail "declared but not imported (unused, or not linked): ${missing[*]}"

    # Routines not every kernel exports are looked up at run time (src/sys/kernel.rs): a static
    # import of one refuses the image on Windows 10 before 2004 and on ReactOS.
    for name in ExAllocatePool2; do
        ! grep -qx "$name" <<<"$imported" || fail "$name is imported statically; it must be looked up with MmGetSystemRoutineAddress"
    done

    local size
    size=$(stat -c %s "$image")
    ((size <= image_budget)) || fail "the image is $size bytes, over its budget of $image_budget (README, \"Image size\")"

    say "checks passed: PE32+ x86-64, subsystem native, entry DriverEntry ($entry, image base $image_base),"
    say "  DllCharacteristics $dllchar (FORCE_INTEGRITY, NX_COMPAT), .reloc present,"
    say "  import modules: $(tr '\n' ' ' <<<"$modules")"
    say "  $(wc -l <<<"$imported") routines imported, all $(declared_imports | wc -l) declared ones among them"
    say "  $size bytes, within the budget of $image_budget"
    printf '%s\n' "$dump" | grep -E '^(Magic|AddressOfEntryPoint|ImageBase|Subsystem|DllCharacteristics)' | sed 's/^/    /'
    awk '/DLL Name:/ {print "    " $0}' <<<"$dump"
}

case "${1:-}" in
    --check) check ;;
    "") install_toolchain; build; check ;;
    *) fail "usage: $0 [--check]" ;;
esac
