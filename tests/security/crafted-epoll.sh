#!/usr/bin/env bash
# Crafted epolls in flight (epoll_entry.alone, libckpt/epoll.c), each
# edited into a real dump of alice's: an epoll that no task holds, whose
# items name their files (file_id) and the numbers they were added with.
# Items that name no file, a file out of the set or the epoll itself, or
# a number no fd can have are refused at load; a file that cannot be
# watched or a number over her RLIMIT_NOFILE when the items are added.
# Each is refused in one line, or restored with exactly alice's powers.
. "$(dirname "$0")/lib.sh" "$@"
start_agent
as_alice sh -c "echo alice >$T/alice/f; mkdir $T/alice/d; mkfifo $T/alice/fifo"

# Base set: a holder of a file (fd 3, turned into the epoll), a directory
# (4) and a FIFO (5, a file an epoll can watch).
alice_target hold hold "$T/alice/f" "$T/alice/d" "$T/alice/fifo"
alice_dump "$SPAWNED" hold

F="fds = {f['fd']: f['file_id'] for f in read('fdinfo')['entries']}; x = e[fds[3]]; x.pop('path', None)"
ep() { # ITEM...: fd 3 becomes an epoll in flight with these items
	echo "$F; x.update(type='FILE_EPOLL', flags=2, epoll=dict(owner_pid=0, owner_fd=0, alone=True, tfds=[$*]))"
}
refused_only() { fail "pid $P restored: $*"; }
has_item() { grep -qE "^tfd: +9 events: +19 data: +7 " /proc/"$P"/fdinfo/3 || fail "no item at fd 9: $(cat /proc/"$P"/fdinfo/3)"; }

# name | base set | file | edit (imgedit.py) | check of the restored process $P | refusal
ITEMS=(
"epoll-alone|hold|files.img|$(ep "dict(tfd=9, events=1, data=7, file_id=fds[5])")|has_item|"
"epoll-alone-nofile|hold|files.img|$(ep "dict(tfd=9, events=1, data=7)")|refused_only an item without its file|epoll in flight, item 0: bad file"
"epoll-alone-range|hold|files.img|$(ep "dict(tfd=9, events=1, data=7, file_id=999)")|refused_only file 999|epoll in flight, item 0: bad file 999"
"epoll-alone-self|hold|files.img|$(ep "dict(tfd=9, events=1, data=7, file_id=fds[3])")|refused_only the epoll in itself|epoll in flight, item 0: bad file"
"epoll-alone-fd|hold|files.img|$(ep "dict(tfd=(1 << 31) - 1, events=1, data=7, file_id=fds[5])")|refused_only fd 2^31-1|epoll in flight, item 0: bad file .* or fd 2147483647"
"epoll-alone-nofile-limit|hold|files.img|$(ep "dict(tfd=1 << 29, events=1, data=7, file_id=fds[5])")|refused_only fd 2^29|epoll in flight, item 0: cannot watch its file again"
"epoll-alone-dir|hold|files.img|$(ep "dict(tfd=9, events=1, data=7, file_id=fds[4])")|refused_only a directory watched|epoll in flight, item 0: cannot watch its file again"
)

run_items
finish
