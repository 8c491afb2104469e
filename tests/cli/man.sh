#!/usr/bin/env bash
# The man pages (man/) render without a warning and cannot drift from the
# code: every verb and option ckptctl and ckptd accept, every ckpt.conf key
# the code reads, every plugstack.conf argument, job option and environment
# variable of the Slurm plugin and its programs is in its page, in bold (as
# a man page names a command, an option or a key; a word that only turns up
# in a sentence does not count).  The names are taken from the source (the
# getopt tables and optstrings, the strcmp()s of hand-parsed arguments, the
# conf_get*() calls, the SPANK option table, the getenv()s) and from the
# programs' own usage.  Each list must find a few names, so that an
# extraction broken by a change of the code fails instead of passing empty.
#   man.sh SOURCE_DIR CKPTCTL CKPTD
# Not -e: a pipeline that finds nothing must reach the count check below
# and say so, not end the script without a word.
set -u
SRC=$1 CKPTCTL=$2 CKPTD=$3
MAN=$SRC/man
T=$(mktemp -d /tmp/ckpt-man.XXXXXX)
trap 'rm -rf "$T"' EXIT
errors=0
summary=()
fail() { echo "FAIL: man: $*"; errors=$((errors + 1)); }

command -v groff >/dev/null || { echo "FAIL: man: groff is not installed (scripts/setup installs groff-base)"; exit 1; }

# ---- 1. every page renders without a warning --------------------------------
pages=("$MAN"/*.[1-8])
[ ${#pages[@]} -ge 4 ] || fail "only ${#pages[@]} pages in $MAN"
for p in "${pages[@]}"; do
	name=$(basename "$p")
	out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$p" 2>&1) || fail "$name: groff failed"
	[ -z "$out" ] || fail "$name: groff warns: $out"
	# man-db's own check (its preprocessors, its encoding), where it is.
	if command -v man >/dev/null; then
		out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
			man --warnings -E UTF-8 -l -Tutf8 -Z "$p" 2>&1 >/dev/null) || fail "$name: man -l failed"
		[ -z "$out" ] || fail "$name: man warns: $out"
	fi
	# .TH NAME SECTION is the file's name.
	th=$(sed -n 's/^\.TH \([^ ]*\) \([0-9]\).*/\1.\2/p' "$p" | sed 's/\\-/-/g' | tr 'A-Z' 'a-z')
	[ "$th" = "$name" ] || fail "$name: .TH says $th"
done

# ---- 2. the names of the code, in bold in their page ------------------------

# bold PAGE: the text the page sets in bold, with roff's escapes undone:
# .B and .SH/.SS lines, the bold arguments of .BR .BI (odd) and .RB .IB
# (even), and \fB...\f? inside any line.
bold() {
	awk '
	function split_args(s, a,    n, i, c, cur, q, have) {
		n = 0; cur = ""; q = 0; have = 0
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			if (c == "\\" && i < length(s)) { cur = cur c substr(s, i + 1, 1); i++; have = 1; continue }
			if (c == "\"") { if (q && substr(s, i + 1, 1) == "\"") { cur = cur c; i++; continue } q = !q; have = 1; continue }
			if (c == " " && !q) { if (have) a[++n] = cur; cur = ""; have = 0; continue }
			cur = cur c; have = 1
		}
		if (have) a[++n] = cur
		return n
	}
	# The bold part of s, set from font "B" when isbold, else roman.
	function bold_of(s, isbold,    out, i, c, f) {
		out = ""
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			if (c == "\\" && substr(s, i + 1, 1) == "f") {
				f = substr(s, i + 2, 1)
				if (f == "(") { f = substr(s, i + 3, 2); i += 4 } else i += 2
				isbold = f == "B" || f == "BI" || (f == "P" ? isbold : 0)
				out = out " "
				continue
			}
			if (isbold) out = out c
		}
		return out
	}
	/^\.\\"/ { next }
	/^\.(TH|nr|nh|so)( |$)/ { next }
	{
		line = $0; start = 0; alt = ""
		if (line ~ /^\.(B|SH|SS)( |$)/) { start = 1; sub(/^\.[A-Z]+ ?/, "", line) }
		else if (line ~ /^\.(BR|BI)( |$)/) alt = "odd"
		else if (line ~ /^\.(RB|IB)( |$)/) alt = "even"
		else if (line ~ /^\.[A-Za-z]+/) sub(/^\.[A-Za-z]+ ?/, "", line)
		if (alt != "") {
			sub(/^\.[A-Z]+ ?/, "", line)
			n = split_args(line, a); out = ""
			for (k = 1; k <= n; k++)
				out = out " " bold_of(a[k], (alt == "odd") == (k % 2 == 1))
		} else {
			n = split_args(line, a); out = ""
			for (k = 1; k <= n; k++) out = out " " bold_of(a[k], start)
		}
		gsub(/\\-/, "-", out); gsub(/\\&/, "", out); gsub(/\\e/, "\\", out)
		gsub(/\\\(lq|\\\(rq/, "\"", out); gsub(/\\ /, " ", out); gsub(/\\\|/, "", out)
		print out
	}' "$1"
}

# has_bold FILE NAME: NAME is in FILE as a word: not inside a longer name
# (letters, digits, _ and - on either side; a . before it).
has_bold() {
	awk -v name="$2" '
	{
		s = $0
		while ((i = index(s, name)) > 0) {
			before = i > 1 ? substr(s, i - 1, 1) : " "
			after = substr(s, i + length(name), 1)
			if (before !~ /[A-Za-z0-9_.-]/ && after !~ /[A-Za-z0-9_-]/) { found = 1; exit }
			s = substr(s, i + 1)
		}
	}
	END { exit !found }' "$1"
}

# check PAGE WHAT MIN NAME...: each NAME in bold in PAGE; at least MIN names.
check() {
	local page=$1 what=$2 min=$3 name
	shift 3
	[ -f "$MAN/$page" ] || { fail "$page: missing"; return; }
	bold "$MAN/$page" >"$T/$page.bold"
	[ $# -ge "$min" ] || fail "found only $# $what in the source ($*): is the extraction broken?"
	summary+=("$# ${what}s")
	for name in "$@"; do
		has_bold "$T/$page.bold" "$name" || fail "$page: $what '$name' is not in the page (in bold)"
	done
}

uniq_words() { tr ' ' '\n' | sed '/^$/d' | sort -u; }

# ckptctl: its commands (main()'s strcmp(cmd, ...) and its usage).
verbs=$( { sed -n 's/.*strcmp(cmd, "\([a-z-]*\)").*/\1/p' "$SRC/cli/main.c"
	"$CKPTCTL" help | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p'; } | uniq_words)
check ckptctl.8 "ckptctl command" 10 $verbs
# checkpoint VERB: known_verb()'s table.
cverbs=$(sed -n '/verbs\[\] = {/,/};/p' "$SRC/cli/checkpoint.c" | grep -o '"[a-z]*"' | tr -d '"' | uniq_words)
check ckptctl.8 "checkpoint verb" 8 $cverbs
# image SUB: IMAGE_SUBS, checked as "image SUB"; image x VIEW.
isubs=$(sed -n 's/^#define IMAGE_SUBS "\(.*\)"/\1/p' "$SRC/cli/image.c" | sed 's/,/ /g; s/ or / /' | uniq_words)
set --
for s in $isubs; do set -- "$@" "image $s"; done
check ckptctl.8 "image subcommand" 10 "$@"
views=$(sed -n 's/.*strcmp(argv\[3\], "\([a-z]*\)").*/\1/p' "$SRC/cli/image.c" | uniq_words)
check ckptctl.8 "image x view" 3 $views
# Options: every struct option table, every optstring letter, every
# option compared by hand, every --option of the usage.
longs() { sed -n 's/^[[:space:]]*{ "\([a-z][a-z-]*\)", [a-z_]*_argument.*/--\1/p' "$@"; }
shorts() {
	grep -ho 'getopt_long([^,]*, [^,]*, "[^"]*"' "$@" | sed 's/.*"\(.*\)"/\1/' |
		grep -o '[A-Za-z]' | sed 's/^/-/'
}
handparsed() {
	grep -hE 'str(n)?cmp\(' "$@" | grep -oE '"--?[a-z][a-z-]*=?"' | tr -d '"=' 
}
cli_opts=$( { longs "$SRC"/cli/*.c; shorts "$SRC"/cli/*.c; handparsed "$SRC"/cli/*.c
	"$CKPTCTL" help | grep -oE -- '--[a-z][a-z-]*'; } | uniq_words)
check ckptctl.8 "ckptctl option" 40 $cli_opts
# Its environment: getenv() of the CLI, the client library, storage.
env_cli=$(grep -ho 'getenv("CKPT_[A-Z_]*")' "$SRC"/cli/*.c "$SRC"/agent/client.c "$SRC"/storage/*.c |
	sed 's/getenv("\(.*\)")/\1/' | uniq_words)
check ckptctl.8 "environment variable" 3 $env_cli

# ckptd: its option table, optstring and hand-parsed options, its usage.
ckptd_opts=$( { longs "$SRC/agent/ckptd.c"; shorts "$SRC/agent/ckptd.c"
	handparsed "$SRC/agent/ckptd.c"
	{ "$CKPTD" --no-such-option 2>&1 || true; } | sed -n '/^usage: ckptd/,$p' | grep -oE -- '--?[a-z][a-z-]*'; } |
	uniq_words)
check ckptd.8 "ckptd option" 8 $ckptd_opts

# ckpt.conf: every key a conf_get*() reads, anywhere in the tree.
keys=$(grep -rhoE --include='*.c' 'conf_get[a-z0-9_]*\([^;"]*"[A-Za-z0-9_.-]+"' \
	"$SRC"/agent "$SRC"/cli "$SRC"/storage "$SRC"/libckpt "$SRC"/slurm-plugin |
	sed 's/.*"\(.*\)"/\1/' | uniq_words)
check ckpt.conf.5 "ckpt.conf key" 10 $keys

# The Slurm plugin: plugstack.conf arguments (parse_plugin_args), job
# options (the spank_option table), the policies, and the environment of
# the plugin, ckpt-batch, the epilog and ckpt-sbatch.
pargs=$(grep -oE 'str(n)?cmp\(av\[i\], "[a-z_]+=' "$SRC/slurm-plugin/spank.c" | sed 's/.*"//' | uniq_words)
check ckpt-spank.8 "plugstack.conf argument" 7 $pargs
jopts=$(sed -n 's/^[[:space:]]*{ "\([a-z][a-z-]*\)", ".*/--\1/p' "$SRC/slurm-plugin/spank.c" | uniq_words)
check ckpt-spank.8 "job option" 4 $jopts
kinds=$(sed -n 's/.*\[POLICY_[A-Z_]*\] = "\([a-z-]*\)".*/\1/p' "$SRC/slurm-plugin/policy.c" | grep -vx none | uniq_words)
check ckpt-spank.8 "--checkpoint kind" 3 $kinds
env_slurm=$(grep -ohE '(getenv\(|spank_setenv\(sp, )"CKPT_[A-Z_]+"|\$\{?CKPT_[A-Z_]+' \
	"$SRC"/slurm-plugin/*.c "$SRC/slurm-plugin/epilog" "$SRC/examples/ckpt-sbatch" |
	grep -oE 'CKPT_[A-Z_]+' | uniq_words)
check ckpt-spank.8 "environment variable" 6 $env_slurm
check ckpt-spank.8 "program" 4 ckpt.so ckpt-batch ckpt-epilog ckpt-sbatch

# etc/ckpt.conf, the example the page points to, names every key too
# (commented out at its default: "#KEY = ...").
for k in $keys; do
	grep -Eq "^#?$k =" "$SRC/etc/ckpt.conf" || fail "etc/ckpt.conf: key '$k' is not listed"
done

# ---- 3. every option of the code is in the program's own usage -------------
# (ckptctl help, ckptd's usage line), as every image subcommand and
# checkpoint verb is: the short summary must not lag behind the page.
# in_usage FILE WHAT MIN NAME...: each NAME a word of FILE.
in_usage() {
	local file=$1 what=$2 min=$3 name
	shift 3
	[ $# -ge "$min" ] || fail "found only $# $what in the source ($*): is the extraction broken?"
	for name in "$@"; do
		has_bold "$file" "$name" || fail "$what '$name' is not in the usage"
	done
}
"$CKPTCTL" help >"$T/ckptctl.help"
in_usage "$T/ckptctl.help" "ckptctl option" 40 $( { longs "$SRC"/cli/*.c; shorts "$SRC"/cli/*.c
	handparsed "$SRC"/cli/*.c; } | uniq_words)
grep '^  image' "$T/ckptctl.help" >"$T/image.help"
in_usage "$T/image.help" "image subcommand" 10 $isubs
in_usage "$T/ckptctl.help" "checkpoint verb" 8 $cverbs
# ckptd's usage, from "usage:" to its last line; --worker is its own
# (ckptd runs itself so), not the user's.
{ "$CKPTD" --no-such-option 2>&1 || true; } | sed -n '/^usage: ckptd/,$p' >"$T/ckptd.usage"
in_usage "$T/ckptd.usage" "ckptd option" 8 $( { longs "$SRC/agent/ckptd.c"; shorts "$SRC/agent/ckptd.c"; } |
	uniq_words)

[ $errors -eq 0 ] || { echo "FAIL: man: $errors problems"; exit 1; }
echo "ok: ${#pages[@]} pages render cleanly; in them: $(IFS=,; echo "${summary[*]}" | sed 's/,/, /g')"
