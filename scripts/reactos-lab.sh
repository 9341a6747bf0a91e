#!/usr/bin/env bash
# The ReactOS lab: the real ksring.sys on a second NT kernel we did not write.
#
#   scripts/reactos-lab.sh                 build, make the image, boot, report (exit 0 only if clean)
#   scripts/reactos-lab.sh --only NAME     run only the scenarios whose name contains NAME
#   scripts/reactos-lab.sh --no-build      reuse target/cross/ksring.sys and target/lab/ksnative.exe
#
# Steps: cross-builds ksring.sys (scripts/cross-build.sh) and the native client ksnative.exe
# (crates/ksnative, `--features native`, same Debian toolchain), makes a test image from ReactOS'
# STOCK amd64 image (../shared/reactos-lab, or $REACTOS_LAB) with the driver, its registry keys and
# two BootExecute entries (`ksnative run`, `ksnative after-exit`), boots it under QEMU/TCG with
# COM1 on a pair of FIFOs, and reads the serial log as it grows:
#   - `PASS name` / `FAIL name: why` lines from the client; `KSRING-NATIVE-DONE` ends the run;
#   - `kdb:>` (KDBG: a bugcheck, an assertion, an unhandled exception) is a crash: the runner
#     answers an assertion prompt with `o`, sends `bt` to KDBG, prints the backtrace and fails.
# Exits non-zero on any FAIL not listed in scripts/reactos-lab.known-failures, on a crash, on a
# timeout, or when the client never finished. Needs: qemu-system-x86 xorriso libwin-hivex-perl
# xz-utils (scripts/setup-host.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lab=${REACTOS_LAB:-$root/../shared/reactos-lab}
out="$root/target/lab"
known_file="$root/scripts/reactos-lab.known-failures"
timeout_s=${REACTOS_LAB_TIMEOUT:-180}
only="" build=1
while (($#)); do
    case "$1" in
        --only) only=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "usage: $0 [--only NAME] [--no-build]" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*"; }
fail() { printf 'reactos-lab: FAILED: %s\n' "$*" >&2; exit 1; }
t_start=$(date +%s)

[ -d "$lab/images" ] || fail "no ReactOS lab at $lab (set REACTOS_LAB)"
for tool in qemu-system-x86_64 osirrox hivexregedit xz; do
    command -v "$tool" >/dev/null || fail "$tool missing (scripts/setup-host.sh)"
done
mkdir -p "$out"

# ---- build ---------------------------------------------------------------------------------------
native_exe="$out/ksnative.exe"
if ((build)); then
    "$root/scripts/cross-build.sh"
    say "building ksnative.exe (NT native, ntdll only)"
    flags="-C linker=lld-link-22"
    for a in /SUBSYSTEM:NATIVE /ENTRY:NtProcessStartup /NODEFAULTLIB /NXCOMPAT /DYNAMICBASE /MANIFEST:NO; do
        flags+=" -C link-arg=$a"
    done
    (cd "$root" && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags" \
        /usr/bin/cargo build --release -q -p ksnative --bin ksnative --features native \
        --target x86_64-pc-windows-msvc --target-dir "$root/target/cross-native" \
        -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem)
    cp "$root/target/cross-native/x86_64-pc-windows-msvc/release/ksnative.exe" "$native_exe"
fi
[ -f "$native_exe" ] && [ -f "$root/target/cross/ksring.sys" ] || fail "no images (run without --no-build)"
dump=$(x86_64-w64-mingw32-objdump -p "$native_exe" 2>/dev/null || objdump -p "$native_exe")
grep -qE '^Subsystem\s+00000001' <<<"$dump" || fail "ksnative.exe: subsystem is not native"
modules=$(awk '/DLL Name:/ {print $3}' <<<"$dump" | sort -u | tr '\n' ' ')
[ "$modules" = "ntdll.dll " ] || fail "ksnative.exe imports from: $modules(only ntdll.dll allowed)"
say "ksnative.exe: $(stat -c %s "$native_exe") bytes, subsystem native, imports: $modules"

# ---- image ---------------------------------------------------------------------------------------
base="$out/reactos-stock.iso"
xz_image="$lab/images/reactos-amd64-native-stock.iso.xz"
want_sum=$(awk '/reactos-amd64-native-stock.iso.xz/ {print $1}' "$lab/images/SHA256SUMS")
if [ ! -f "$base" ] || [ "$(cat "$base.xzsum" 2>/dev/null)" != "$want_sum" ]; then
    [ "$(sha256sum "$xz_image" | cut -d' ' -f1)" = "$want_sum" ] || fail "$xz_image: checksum mismatch"
    say "unpacking the stock image"
    xz -dkc "$xz_image" >"$base.tmp" && mv "$base.tmp" "$base" && echo "$want_sum" >"$base.xzsum"
fi
reg="$root/scripts/reactos-lab/ksnative.reg"
if [ -n "$only" ]; then # a BootExecute of `ksnative run NAME` and, if NAME is process-exit, the check
    reg="$out/ksnative-only.reg"
    entries=("ksnative run $only")
    [[ "process-exit" == *"$only"* ]] && entries+=("ksnative after-exit")
    hex=$(printf '%s\0' "${entries[@]}" | iconv -f UTF-8 -t UTF-16LE | od -An -v -tx1 | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
    printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\Session Manager]\n"BootExecute"=hex(7):%s,00,00\n' "$hex" >"$reg"
fi
say "making the test image"
"$lab/make-test-iso.sh" "$base" "$out/test.iso" "$lab/reg/native-bootexecute.reg" "$lab/reg/ksring.reg" \
    "$reg" "$native_exe" "$root/target/cross/ksring.sys" >/dev/null 2>&1 || fail "make-test-iso.sh"

# ---- boot ----------------------------------------------------------------------------------------
log="$out/serial.log"
fifo="$out/com1"
rm -f "$fifo.in" "$fifo.out" "$log"
mkfifo "$fifo.in" "$fifo.out"
: >"$log"
cat "$fifo.out" >>"$log" &
reader=$!
exec 3<>"$fifo.in" # KDBG reads its commands from COM1: this end writes them
say "booting ReactOS (stock kernel) under QEMU/TCG, COM1 -> $log"
t_boot=$(date +%s)
qemu-system-x86_64 -machine pc,accel=tcg -cpu max -m "${QEMU_MEM:-1024}" -smp 1 \
    -cdrom "$out/test.iso" -boot d -serial "pipe:$fifo" -display none -monitor none -no-reboot &
qemu=$!
cleanup() {
    kill "$qemu" 2>/dev/null || true
    wait "$qemu" 2>/dev/null || true
    kill "$reader" 2>/dev/null || true
    exec 3>&- || true
    rm -f "$fifo.in" "$fifo.out"
}
trap cleanup EXIT

# A stop: a bugcheck, an assertion's prompt, or KDBG itself. KDBG owns COM1 from then on.
stop_re='\*\*\* Fatal System Error|Entered debugger|\(boipt\)\?|kdb:>|Press q to abort'
count() { grep -ac -- "$1" "$log" || true; }
# Drives KDBG for a backtrace: answers an assertion's prompt with `o` (break once), pages on
# through `--- Press q ...` prompts, sends `bt` at the first `kdb:>`, and stops when the output
# has been quiet for 3 s (at most 40 s).
capture_backtrace() {
    local asked=0 paged=0 bt=0 quiet=0 size=0 now n
    for _ in $(seq 1 80); do
        n=$(count '(boipt)?')
        if ((n > asked)); then asked=$n; printf 'o\r' >&3; fi
        n=$(count 'Press q to abort')
        if ((n > paged)); then paged=$n; printf ' ' >&3; fi
        if ((bt == 0)) && grep -qa 'kdb:>' "$log"; then bt=1; printf 'bt\r' >&3; fi
        now=$(stat -c %s "$log")
        if ((now == size)); then quiet=$((quiet + 1)); else quiet=0; size=$now; fi
        ((bt == 1 && quiet >= 6)) && return 0
        ((bt == 0 && quiet >= 20)) && return 0
        sleep 0.5
    done
}

verdict="" crashed=0
while kill -0 "$qemu" 2>/dev/null; do
    if grep -qaE "$stop_re" "$log"; then
        crashed=1
        say "the kernel stopped (KDBG on COM1) after $(($(date +%s) - t_boot)) s: capturing a backtrace"
        capture_backtrace
        break
    fi
    if grep -qa 'KSRING-NATIVE-DONE' "$log"; then
        verdict=done
    fi
    if (($(date +%s) - t_boot > timeout_s)); then
        verdict=timeout
        break
    fi
    sleep 0.5
done
if ((crashed == 0)) && [ "$verdict" != timeout ]; then
    wait "$qemu" 2>/dev/null || true
    sleep 0.5
    grep -qa 'KSRING-NATIVE-DONE' "$log" && verdict=done
fi
cleanup
trap - EXIT
t_end=$(date +%s)

# ---- report --------------------------------------------------------------------------------------
tr -d '\r' <"$log" >"$log.txt"
declare -A known=()
if [ -f "$known_file" ]; then
    while IFS= read -r line; do
        name=${line%%#*}
        name=${name//[[:space:]]/}
        [ -n "$name" ] && known[$name]=${line#*#}
    done <"$known_file"
fi
printf '\n%-22s %-8s %s\n' "scenario" "ReactOS" "detail"
printf '%s\n' "----------------------------------------------------------------------------------------"
unexpected=0 passed=0 failed=0 skipped=0
while IFS= read -r line; do
    case "$line" in
        PASS\ *)
            name=${line#PASS }
            passed=$((passed + 1))
            note=""
            [ -n "${known[$name]+x}" ] && note="NOW PASSES: remove it from scripts/reactos-lab.known-failures"
            printf '%-22s %-8s %s\n' "$name" PASS "$note"
            ;;
        SKIP\ *)
            rest=${line#SKIP }
            skipped=$((skipped + 1))
            printf '%-22s %-8s %s\n' "${rest%%:*}" SKIP "${rest#*: }"
            ;;
        FAIL\ *)
            rest=${line#FAIL }
            name=${rest%%:*}
            failed=$((failed + 1))
            if [ -n "${known[$name]+x}" ]; then
                printf '%-22s %-8s %s\n' "$name" "FAIL*" "KNOWN:${known[$name]} -- ${rest#*: }"
            else
                unexpected=$((unexpected + 1))
                printf '%-22s %-8s %s\n' "$name" FAIL "${rest#*: }"
            fi
            ;;
    esac
done < <(grep -aE '^(PASS|FAIL|SKIP) ' "$log.txt")
printf '%s\n' "----------------------------------------------------------------------------------------"
say "$passed passed, $failed failed ($((failed - unexpected)) of them known failures), $skipped skipped (ReactOS gaps); client summaries: $(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log.txt" | tr '\n' ';')"
if ((${#known[@]})); then
    printf '\n!!! KNOWN FAILURES ALLOWED (scripts/reactos-lab.known-failures) !!!\n'
    for k in "${!known[@]}"; do printf '!!!   %-20s #%s\n' "$k" "${known[$k]}"; done
    printf '!!! a known failure still fails the run if it crashes the kernel or hangs the client\n\n'
fi
if grep -qaE '^GAP ' "$log.txt"; then
    say "ReactOS gaps the client saw and worked around (ks.sys/kernel behaviour, not ksring's):"
    grep -aE '^GAP ' "$log.txt" | sort -u | sed 's/^/    /'
fi
grep -aE '^ksring: pool:' "$log.txt" | sed 's/^/    /' || true
say "timing: boot + scenarios $((t_end - t_boot)) s, whole lab $((t_end - t_start)) s; log: $log.txt"

if ((crashed)); then
    printf '\n---- the stop on COM1 (from the line before it; the backtrace follows) ----\n'
    first=$(grep -naE "$stop_re" "$log.txt" | head -n1 | cut -d: -f1)
    tail -n +"$((first > 3 ? first - 3 : 1))" "$log.txt" | tr -cd '[:print:]\n' | head -n 120
    # ksring's panic handler stops with KeBugCheckEx('KSRP', file, file length, line, column).
    if p=$(grep -aA1 'Fatal System Error: 0x4b535250' "$log.txt" | grep -aoE '\(0x[0-9A-F]+,0x[0-9A-F]+,0x[0-9A-F]+,0x[0-9A-F]+' | head -n1); then
        IFS=, read -r _file _len line column <<<"${p#(}"
        printf '\n==> bugcheck KSRP = a ksring panic (assertion) at source line %d, column %d\n' "$((16#${line#0x}))" "$((16#${column#0x}))"
    fi
    fail "the kernel stopped (bugcheck, assertion or KDBG entry)"
fi
[ "$verdict" = timeout ] && { tail -n 30 "$log.txt"; fail "timeout after ${timeout_s}s"; }
[ "$verdict" = done ] || { tail -n 30 "$log.txt"; fail "the client never printed KSRING-NATIVE-DONE"; }
grep -qa 'KSRING-NATIVE-PANIC' "$log.txt" && fail "the client panicked"
((passed + failed > 0)) || fail "no scenario ran"
((unexpected == 0)) || fail "$unexpected scenario(s) failed"
say "the ReactOS lab passed"
