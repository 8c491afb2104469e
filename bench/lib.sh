# shellcheck shell=bash
# bench/lib.sh: what the bench scripts (bench/run, bench/criu-compare)
# share: clocks, waiting for memhog's files and for a process to go.

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# `name: value` line of a --stats output file.
stat_of() { awk -F': *' -v k="$2" '$1 == k { print $2; exit }' "$1"; }

wait_for_file() { # FILE SECONDS
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# Wait until PID has exited (gone, or a zombie waiting for its reaper).
wait_gone() {
	local i state
	for ((i = 0; i < 200; i++)); do
		state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
		[ "$state" = Z ] && return 0
		sleep 0.05
	done
	return 1
}

# min-max and median of the numbers on stdin, "%.0f"-formatted unless
# FMT is given: "lo-hi (median m)".
spread() {
	sort -g | awk -v fmt="${1:-%.0f}" '{ a[++n] = $1 }
	END {
		if (!n) { print "-"; exit }
		m = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		lo = sprintf(fmt, a[1]); hi = sprintf(fmt, a[n])
		printf "%s (median " fmt ")\n", lo == hi ? lo : lo "-" hi, m
	}'
}
