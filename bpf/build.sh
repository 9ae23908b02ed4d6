#!/usr/bin/env bash
# Build the ebpf-net BPF objects: bpf/.output/ebpf_net.bpf.o and ebpf_net.typed.bpf.o
#
# One .bpf.c per concern, each compiled on its own (CO-RE, vmlinux.h from the
# running kernel's BTF), then linked into one object with `bpftool gen object`
# (libbpf's static linker). The socket concerns are compiled a second time with
# EBPF_NET_TYPED (BTF-typed tracepoints, see common.bpf.h) into a second object
# with the same programs and maps; the collector loads it where the kernel
# allows tracing programs. The maps, knobs and the socket-id counter are
# defined once in maps.bpf.c and declared `extern` elsewhere (common.bpf.h);
# the linker resolves them, so every program shares the same maps.
# DWARF is stripped at the end (BTF and BTF.ext stay: CO-RE needs them).
#
# Usage: bash bpf/build.sh [--with-probe]   (from any directory)
#        --with-probe also builds the test harness bpf/.output/ebpf_net_probe
#        (bpf/tools/ebpf_net_probe.c; needs gcc and libbpf-dev)
# Env:   CLANG, BPFTOOL, LLVM_STRIP override the tools; VMLINUX_BTF the BTF source.
set -euo pipefail

BPF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$BPF_DIR/.output"
CLANG="${CLANG:-clang-16}"
BPFTOOL="${BPFTOOL:-bpftool}"
LLVM_STRIP="${LLVM_STRIP:-llvm-strip-16}"
VMLINUX_BTF="${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"

WITH_PROBE=0
for arg in "$@"; do
	case "$arg" in
	--with-probe) WITH_PROBE=1 ;;
	*) echo "bpf/build.sh: unknown argument $arg (usage: bpf/build.sh [--with-probe])" >&2; exit 2 ;;
	esac
done

# Concerns, in link order. maps.bpf.c owns the shared definitions. TYPED ones
# are also built typed.
SOURCES=(maps tcp_lifecycle socket_stats refresh udp process)
TYPED=(tcp_lifecycle socket_stats)

# ---- tools -----------------------------------------------------------------------
die() { echo "bpf/build.sh: $*" >&2; exit 1; }
command -v "$CLANG" >/dev/null 2>&1 || die "$CLANG not found: install the Debian package clang-16 (apt-get install clang-16)"
command -v "$BPFTOOL" >/dev/null 2>&1 || die "$BPFTOOL not found: install the Debian package bpftool (apt-get install bpftool)"
[[ -f /usr/include/bpf/bpf_helpers.h ]] || die "/usr/include/bpf/bpf_helpers.h not found: install the Debian package libbpf-dev (apt-get install libbpf-dev)"

mkdir -p "$OUT"

# ---- vmlinux.h from the running kernel's BTF ---------------------------------------
if [[ ! -s "$OUT/vmlinux.h" ]]; then
	[[ -r "$VMLINUX_BTF" ]] || die "$VMLINUX_BTF not readable: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y is required)"
	"$BPFTOOL" btf dump file "$VMLINUX_BTF" format c > "$OUT/vmlinux.h.tmp"
	mv "$OUT/vmlinux.h.tmp" "$OUT/vmlinux.h"
fi

# A failed build must not leave an older object behind.
rm -f "$OUT/ebpf_net.bpf.o" "$OUT/ebpf_net.typed.bpf.o"

# ---- compile each concern ---------------------------------------------------------
# -mcpu=v3: 32-bit atomics and atomic fetch-and-add with a result (socket ids).
CFLAGS=(-target bpf -mcpu=v3 -g -O2 -Wall -Wno-unused-function
	-D__TARGET_ARCH_x86 -I "$OUT" -I "$BPF_DIR")
raw=()
typed=()
for s in "${SOURCES[@]}"; do
	"$CLANG" "${CFLAGS[@]}" -c "$BPF_DIR/$s.bpf.c" -o "$OUT/$s.tmp.bpf.o"
	raw+=("$OUT/$s.tmp.bpf.o")
	if [[ " ${TYPED[*]} " == *" $s "* ]]; then
		"$CLANG" "${CFLAGS[@]}" -DEBPF_NET_TYPED -c "$BPF_DIR/$s.bpf.c" -o "$OUT/$s.typed.tmp.bpf.o"
		typed+=("$OUT/$s.typed.tmp.bpf.o")
	else
		typed+=("$OUT/$s.tmp.bpf.o")
	fi
done

# ---- check the knob layout user space relies on (.rodata offsets) ----------------------
# Expected: name offset, all __u32.
expected="netns_filter 0
filter_netns 4
trace_tcp 8
trace_udp 12
udp_per_remote 16
close_at_destroy 20
tcp_slot_mask 24"
check_knobs() {
	local actual
	actual="$("$BPFTOOL" btf dump file "$1" format raw | awk '
	/^\[[0-9]+\] VAR / { gsub(/\x27/, "", $3); var[substr($1, 2, length($1) - 2)] = $3 }
	/^\[[0-9]+\] DATASEC \x27\.rodata\x27/ { inro = 1; next }
	/^\[[0-9]+\] / { inro = 0 }
	inro && /type_id=/ {
		match($0, /type_id=[0-9]+/); id = substr($0, RSTART + 8, RLENGTH - 8)
		match($0, /offset=[0-9]+/); off = substr($0, RSTART + 7, RLENGTH - 7)
		print var[id], off
	}')"
	if [[ "$actual" != "$expected" ]]; then
		echo "bpf/build.sh: .rodata knob layout of $1 changed; expected:" >&2
		echo "$expected" >&2
		echo "got:" >&2
		echo "$actual" >&2
		exit 1
	fi
}

# ---- link each object (sharing the maps), strip DWARF (keeps .BTF / .BTF.ext), check ------
link() {
	local out="$1"
	shift
	"$BPFTOOL" gen object "$out.tmp" "$@"
	if command -v "$LLVM_STRIP" >/dev/null 2>&1; then
		"$LLVM_STRIP" -g "$out.tmp"
	fi
	check_knobs "$out.tmp"
	mv "$out.tmp" "$out"
	echo "bpf/build.sh: built $out"
}
link "$OUT/ebpf_net.bpf.o" "${raw[@]}"
link "$OUT/ebpf_net.typed.bpf.o" "${typed[@]}"
rm -f "$OUT"/*.tmp.bpf.o

# ---- optional: the libbpf test harness ------------------------------------------------------
if [[ $WITH_PROBE == 1 ]]; then
	command -v gcc >/dev/null 2>&1 || die "gcc not found: install the Debian package gcc"
	gcc -O2 -Wall -I "$BPF_DIR" "$BPF_DIR/tools/ebpf_net_probe.c" -lbpf -o "$OUT/ebpf_net_probe"
	echo "bpf/build.sh: built $OUT/ebpf_net_probe"
fi
