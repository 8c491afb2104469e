#!/usr/bin/env bash
# Crafted images, one set per field the restore applies, each edited from
# a real dump of alice's: credentials, capabilities, rlimits, seccomp,
# personality, cwd and root, file paths of every kind, unix socket names
# and peers, ghost files, controlling terminals (tty-system.c), removed directories, FIFOs, device nodes and
# cwds (made again where alice may not, or a device she may not make), the
# exe, unix socket names whose directory is gone (made again for the bind,
# as alice, and removed).  Each is refused in one line, or
# restored with exactly alice's powers and none of bob's or root's files
# (the check of each item looks at what the restored process holds).
# Page blocks shared by chunks (pagemap block_pages, block_skip): pages
# past a block, a huge block, a block larger than its data, a chunk that
# claims another's block with another crc: refused in one line.
# (chroot, even into a directory of her own, needs CAP_SYS_CHROOT: with a
# hard link to a set-uid program in it, a way to root.  A hard limit
# raised needs CAP_SYS_RESOURCE: where root lacks it too, that item
# passes before the fix.)
# (Scheduling, nice, ioprio, securebits: privileges.sh; System V shm:
# sysv-shm.sh; ckptd's socket as a relay for root: root-shell.sh.)
. "$(dirname "$0")/lib.sh" "$@"
start_agent
B=$T/bob

# Bob's things, and alice's own to dump.
as_bob sh -c "echo bob-secret >$B/secret; chmod 600 $B/secret; mkfifo -m 600 $B/fifo; mkdir -m 700 $B/d"
as_alice ln -s /etc "$T/alice/etc-link"
trap 'rm -rf /etc/ckpt-sec-saved /etc/ckpt-sec-dir /etc/ckpt-sec-rmdir /etc/ckpt-sec-cwd /etc/ckpt-sec-unix; cleanup' EXIT
as_alice sh -c "echo alice >$T/alice/f; echo ghost >$T/alice/g; mkfifo $T/alice/fifo; mkdir $T/alice/d"

# Base sets: a counter; a holder of a file (fd 3), a directory (4), a
# FIFO (5) and a ghost (6); a socketpair (3, 4); a seccomp filter; a TCP
# listener (3) with a connection to it (4, 5).
alice_counter c
NOFILE=$(awk '/^Max open files/ {print $5}' /proc/"$SPAWNED"/limits)
alice_dump "$SPAWNED" counter
alice_target hold hold "$T/alice/f" "$T/alice/d" "$T/alice/fifo" "$T/alice/g"
rm -f "$T/alice/g"
alice_dump "$SPAWNED" hold
alice_target relay relay "$T/alice/go"
alice_dump "$SPAWNED" relay
alice_target sc seccomp
alice_dump "$SPAWNED" seccomp
alice_target loop loop 47133
alice_dump "$SPAWNED" loop
# A pty master of hers (fd 3, read-only: input for its slave is refused
# at load whatever else), its slave never opened.
alice_target ptmx hold /dev/ptmx
alice_dump "$SPAWNED" ptmx

SA=$((1 << 21)) CR=$((1 << 40)) # CAP_SYS_ADMIN, CAP_CHECKPOINT_RESTORE
BOB_UID=$(id -u $BOB)
F="fds = {f['fd']: f['file_id'] for f in read('fdinfo')['entries']}"

# Checks of a restored process $P (each fails naming what it found).
holds() { # PATH: P holds no fd to PATH's inode
	local want fd
	want=$(stat -Lc %d:%i "$1")
	for fd in /proc/"$P"/fd/*; do
		[ "$(stat -Lc %d:%i "$fd" 2>/dev/null)" = "$want" ] &&
			fail "pid $P holds $1 on fd ${fd##*/}: $(head -c 40 "$fd" 2>/dev/null | xargs)"
	done
	true
}
cwd_not() { [ "$(readlink /proc/"$P"/cwd)" != "$1" ] || fail "pid $P works in $1"; }
root_is_slash() { [ "$(readlink /proc/"$P"/root)" = / ] || fail "pid $P's root is $(readlink /proc/"$P"/root)"; }
exe_not() { [ "$(readlink /proc/"$P"/exe)" != "$1" ] || fail "pid $P runs $1"; }
nofile_max() { # the hard RLIMIT_NOFILE is not above the dumped one
	local m
	m=$(awk '/^Max open files/ {print $5}' /proc/"$P"/limits)
	[ "$m" -le "$NOFILE" ] || fail "pid $P has a hard NOFILE of $m, above alice's $NOFILE"
}
keeps_seccomp() {
	[ "$(status_of "$P" Seccomp)" = 2 ] && [ "$(status_of "$P" NoNewPrivs)" = 1 ] ||
		fail "pid $P lost its seccomp filter: Seccomp $(status_of "$P" Seccomp), NoNewPrivs $(status_of "$P" NoNewPrivs)"
}
# Files kept with the set (saved.img) are put back only where alice may
# write, never through a symlink, never outside node-local scratch.
sock_not_bobs() { [ ! -e "$1" ] || { [ "$(stat -c %u "$1")" != "$BOB_UID" ] && [ "$(stat -c %a "$1")" != 4777 ]; } ||
	fail "alice made a socket file of bob's: $(ls -l "$1")"; }
not_there() { [ ! -e "$1" ] || fail "$1 was made: $(ls -ld "$1")"; }
# The job's output kept with the set (output-copy.c): fd 1 of every base
# set is its log, alice's, O_APPEND, "ready\n" kept as one page.  A copy
# that claims more than the job's output (pages past its size, a huge
# size, another file's entry) is refused at load; one pointed at bob's
# file is written, if at all, as alice.
refused_only() { fail "pid $P restored: $*"; }
bob_secret_kept() { [ "$(cat "$B/secret")" = bob-secret ] && [ "$(stat -c %U "$B/secret")" = "$BOB" ] ||
	fail "bob's secret was replaced: $(ls -l "$B/secret")"; }
# A removed node (ghost-node.c): made again where alice names it, as alice.
# pid 1, outside alice's tree: which process it is (procfile.c outside)
PID1_TICKS=$(sed 's/.*) //' /proc/1/stat | awk '{print $20}')
BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
RM_NODE="dict(ino=1, size=0, uid=$(id -u $ALICE), gid=$(id -g $ALICE), dev=1, rdev=0)"
SAVED_F="next(x for x in E['files'] if x['mode'] >> 12 == 8)"
no_bob_sock() { [ ! -e "$B/sk" ] || fail "a socket of alice's is bound in bob's directory: $(ls -l "$B/sk")"; }
# The relay's fd 3 reaches ckptd; the connection's peer credential, as
# ckptd sees it, must be alice's: a request on it is logged as hers.
peer_is_alice() {
	as_alice sh -c "echo /nonexistent >$T/alice/go"
	for _ in $(seq 50); do grep -q '^reply' "$T/alice/relay.log" && break; sleep 0.1; done
	grep -q "restore [0-9]*: /nonexistent by uid $(id -u $ALICE)\$" "$T/agent.log" ||
		fail "ckptd did not see alice on the restored connection"
	grep -q "/nonexistent by uid 0" "$T/agent.log" && fail "ckptd saw root on alice's connection"
	return 0
}

# Raw and ping sockets (libckpt/sk-raw.c): the relay's fd 3 made an inet
# socket of the kind named, its peer (fd 4) left unconnected.  A raw one
# needs CAP_NET_RAW, which alice's worker is not lent: refused before
# anything is made (the kernel would refuse socket() too); a protocol no
# socket() takes, or one of another type's, is refused at load.
INET_AT3="e[fds[3]].pop('unix_sk'); e[fds[4]]['unix_sk'].update(state=7); e[fds[4]]['unix_sk'].pop('peer'); e[fds[3]]['type'] = 'FILE_INET_SK'; e[fds[3]]['inet_sk'] = dict(ino=1, family=2, state=7, src_addr='7f00000c', "
no_raw_socket() {
	local fd
	for fd in /proc/"$P"/fd/*; do
		grep -q "^socket:" <<<"$(readlink "$fd")" || continue
		[ "$(awk -v i="$(stat -Lc %i "$fd")" '$10 == i' /proc/net/raw /proc/net/raw6)" = "" ] ||
			fail "pid $P holds a raw socket on fd ${fd##*/}"
	done
	true
}
# A packet or netlink socket in place of fd 3 (a file): a packet socket
# needs CAP_NET_RAW, which a user's restore never has (refused at load); a
# netlink socket is made as alice, who may not join an XFRM group; one of
# a protocol no dump keeps (NETLINK_AUDIT) is refused at load.
PK="(lambda s: (e[fds[3]].pop('path', None), e[fds[3]].update(type='FILE_PACKET_SK', packet_sk=dict(ino=1, **s))))"
NL="(lambda s: (e[fds[3]].pop('path', None), e[fds[3]].update(type='FILE_NETLINK_SK', netlink_sk=dict(ino=1, **s))))"

# name | base set | file | edit (imgedit.py) | check of the restored process $P
# seccomp-removed: the filter is one alice's own process installed, so
# dropping it gains her nothing (she runs unconfined); seccomp-no-nnp: a
# filter without no_new_privs needs CAP_SYS_ADMIN, which a user's restore
# must not borrow from the worker: refused by name, before anything is made.  proc-*: a file under /proc/PID
# (procfile.c) of a pid that is no process of the tree, or through "..",
# refused at load; through a magic link (/proc/PID/root) to a file that
# is not alice's: refused (no magic link followed), or opened as alice;
# a cwd in, or a file under, the /proc of an exited pid 1 (taken: the
# helper cannot have it), or of one past pid_max: refused.  pty-*: input
# a pty's line discipline could not hold, or in a mode the dump refuses,
# or for a slave never opened; a master marked as a dead pty's slave.
ITEMS=(
"uid-0|counter|core|E['creds'].update(uid=0, euid=0, suid=0, fsuid=0)|true"
"euid-0|counter|core|E['creds'].update(euid=0, fsuid=0)|true"
"uid-bob|counter|core|E['creds'].update(uid=$BOB_UID, euid=$BOB_UID, suid=$BOB_UID, fsuid=$BOB_UID)|true"
"gid-0|counter|core|E['creds'].update(gid=0, egid=0, sgid=0, fsgid=0)|true"
"groups-0|counter|core|E['creds']['groups'].append(0)|true"
"prm-sys-admin|counter|core|E['creds'].update(cap_prm=$SA)|true"
"eff-sys-admin|counter|core|E['creds'].update(cap_prm=$SA, cap_eff=$SA)|true"
"inh-sys-admin|counter|core|E['creds'].update(cap_inh=$SA)|true"
"amb-sys-admin|counter|core|E['creds'].update(cap_prm=$SA, cap_inh=$SA, cap_amb=$SA)|true"
"prm-ckpt-restore|counter|core|E['creds'].update(cap_prm=$CR)|true"
"eff-ckpt-restore|counter|core|E['creds'].update(cap_prm=$CR, cap_eff=$CR)|true"
"inh-ckpt-restore|counter|core|E['creds'].update(cap_inh=$CR)|true"
"amb-ckpt-restore|counter|core|E['creds'].update(cap_prm=$CR, cap_inh=$CR, cap_amb=$CR)|true"
"rlimit-nofile|counter|core|[r.update(cur=1 << 20, max=1 << 20) for r in E['rlimits'] if r['resource'] == 7]|nofile_max"
"seccomp-removed|seccomp|core|E['seccomp_filters'] = []; E['creds']['no_new_privs'] = False|true"
"seccomp-no-nnp|seccomp|core|E['creds']['no_new_privs'] = False|keeps_seccomp|seccomp filters installed without no_new_privs: .*not a user's restore"
"personality|counter|core|E['personality'] = 0x0400000|true"
"fdtable-self|counter|inventory.img|E['tasks'][0]['files_shared_with'] = E['tasks'][0]['pid']|refused_only|pid [0-9]*: shares the fd table of pid [0-9]*, which it cannot be created with"
"fdtable-init|counter|inventory.img|E['tasks'][0]['files_shared_with'] = 1|refused_only|pid [0-9]*: shares the fd table of pid 1, which it cannot be created with"
"fs-self|counter|inventory.img|E['tasks'][0]['fs_shared_with'] = E['tasks'][0]['pid']|refused_only|pid [0-9]*: shares the fs of pid [0-9]*, which it cannot be created with"
"cwd-root|counter|core|E['cwd'] = '/root'|cwd_not /root"
"cwd-bob|counter|core|E['cwd'] = '$B/d'|cwd_not $B/d"
"root-bob|counter|core|E['root'] = '$B'|root_is_slash"
"root-alice|counter|core|E['root'] = '$T/alice/d'; E['cwd'] = '/'|root_is_slash"
"file-shadow|hold|files.img|$F; e[fds[3]]['path'] = '/etc/shadow'|holds /etc/shadow"
"file-bob|hold|files.img|$F; e[fds[3]]['path'] = '$B/secret'|holds $B/secret"
"dir-root|hold|files.img|$F; e[fds[4]]['path'] = '/root'|holds /root"
"dir-bob|hold|files.img|$F; e[fds[4]]['path'] = '$B/d'|holds $B/d"
"fifo-bob|hold|files.img|$F; e[fds[5]]['path'] = '$B/fifo'|holds $B/fifo"
"ghost-bob|hold|files.img|$F; e[fds[6]]['path'] = '$B/secret'|holds $B/secret"
"unix-bind-bob|relay|files.img|$F; u = e[fds[3]]['unix_sk']; u.update(state=10, backlog=1, name='$B/sk'.encode().hex()); u.pop('peer')|no_bob_sock"
"unix-peer-ckptd|relay|files.img|$F; a, b = e[fds[3]]['unix_sk'], e[fds[4]]['unix_sk']; a.update(state=7, peer=b['ino']); b.pop('peer'); b['name'] = '$CKPT_SOCKET'.encode().hex()|peer_is_alice"
"unix-gone-dir-etc|relay|files.img|$F; u = e[fds[3]]['unix_sk']; u.update(state=10, backlog=1, name='/etc/ckpt-sec-unix/d/sk'.encode().hex(), unlinked=True); u.pop('peer'); e[fds[4]]['unix_sk'].update(state=7); e[fds[4]]['unix_sk'].pop('peer')|not_there /etc/ckpt-sec-unix"
"unix-gone-dir-bob|relay|files.img|$F; u = e[fds[3]]['unix_sk']; u.update(state=10, backlog=1, name='$B/d/x/sk'.encode().hex(), unlinked=True); u.pop('peer'); e[fds[4]]['unix_sk'].update(state=7); e[fds[4]]['unix_sk'].pop('peer')|not_there $B/d/x"
"unix-gone-dir-dotdot|relay|files.img|$F; u = e[fds[3]]['unix_sk']; u.update(state=10, backlog=1, name='$T/alice/x/../../../../etc/ckpt-sec-unix/sk'.encode().hex(), unlinked=True); u.pop('peer'); e[fds[4]]['unix_sk'].update(state=7); e[fds[4]]['unix_sk'].pop('peer')|not_there /etc/ckpt-sec-unix; not_there $T/alice/x"
"unix-gone-dir-alice|relay|files.img|$F; u = e[fds[3]]['unix_sk']; u.update(state=10, backlog=1, name='$T/alice/gone/d/sk'.encode().hex(), unlinked=True); u.pop('peer'); e[fds[4]]['unix_sk'].update(state=7); e[fds[4]]['unix_sk'].pop('peer')|not_there $T/alice/gone"
"guard-outside-vma|counter|mm|v = E['vmas'][0]; v['guards'] = [dict(start=v['end'], end=v['end'] + 4096)]|refused_only guard pages past their VMA"
"net-lock-bob|loop|files.img|$F; e[fds[4]]['inet_sk']['net_lock'] = 'ckpt_lock_${BOB_UID}_1_2'|refused_only removing bob's network lock"
"net-lock-inject|loop|files.img|$F; e[fds[4]]['inet_sk']['net_lock'] = 'ckpt_lock_$(id -u $ALICE)_1; flush ruleset'|refused_only an nftables command in a lock's name"
"net-lock-own|loop|files.img|$F; e[fds[4]]['inet_sk']['net_lock'] = 'ckpt_lock_$(id -u $ALICE)_1_2'|true"
"other-link-shadow|hold|files.img|$F; e[fds[3]].update(other_link='/etc/shadow', path='$T/alice/sh')|holds /etc/shadow; not_there $T/alice/sh"
"other-link-bob|hold|files.img|$F; e[fds[3]].update(other_link='$B/secret', path='$T/alice/sec')|holds $B/secret; not_there $T/alice/sec"
"exe-passwd|counter|mm|E['exe_path'] = '/usr/bin/passwd'|exe_not /usr/bin/passwd"
"saved-etc|hold|saved.img|$SAVED_F.update(path='/etc/ckpt-sec-saved')|not_there /etc/ckpt-sec-saved"
"saved-dir-etc|hold|saved.img|E['dirs'].append(dict(path='/etc/ckpt-sec-dir', mode=0o777, uid=0, gid=0))|not_there /etc/ckpt-sec-dir"
"saved-symlink|hold|saved.img|$SAVED_F.update(path='$T/alice/etc-link/ckpt-sec-saved')|not_there /etc/ckpt-sec-saved"
"saved-bob|hold|saved.img|$SAVED_F.update(path='$B/secret')|bob_secret_kept"
"output-bob|hold|files.img|$F; e[fds[3]].update(path='$B/secret', flags=0o2001, size=0, output=True)|bob_secret_kept"
"output-copy-bob|hold|files.img|$F; e[fds[1]].update(path='$B/secret', size=4096)|bob_secret_kept"
"output-copy-past|hold|files.img|$F; e[fds[1]].update(size=0)|refused_only a copy past the output's size"
"output-copy-huge|hold|files.img|$F; e[fds[1]].update(size=1 << 50)|refused_only a copy of 2^50 bytes"
"output-copy-not-output|hold|files.img|$F; e[fds[3]].update(output_kept=True)|refused_only a copy on a file opened read-only"
"unix-owner-bob|relay|files.img|$F; u = e[fds[3]]['unix_sk']; u.update(state=10, backlog=1, name='$T/alice/sk'.encode().hex(), file_uid=$BOB_UID, file_gid=$BOB_UID, file_mode=0o4777); u.pop('peer'); e[fds[4]]['unix_sk'].update(state=7); e[fds[4]]['unix_sk'].pop('peer')|sock_not_bobs $T/alice/sk"
"removed-dir-etc|hold|files.img|$F; e[fds[4]].update(type='FILE_GHOST_NODE', path='/etc/ckpt-sec-rmdir', contents=$RM_NODE)|not_there /etc/ckpt-sec-rmdir"
"removed-dir-bob|hold|files.img|$F; e[fds[4]].update(type='FILE_GHOST_NODE', path='$B/d/rmdir', contents=$RM_NODE)|not_there $B/d/rmdir"
"removed-dir-owner-bob|hold|files.img|$F; e[fds[4]].update(type='FILE_GHOST_NODE', path='$T/alice/rmdir', contents=dict($RM_NODE, uid=$BOB_UID, gid=$BOB_UID))|not_there $T/alice/rmdir"
"removed-dev-null|hold|files.img|$F; e[fds[4]].update(type='FILE_GHOST_NODE', path='$T/alice/null', mode=0o20666, flags=2, contents=dict($RM_NODE, rdev=259))|not_there $T/alice/null"
"removed-dev-mem|hold|files.img|$F; e[fds[4]].update(type='FILE_GHOST_NODE', path='$T/alice/mem', mode=0o20666, flags=0, contents=dict($RM_NODE, rdev=257))|not_there $T/alice/mem"
"removed-node-fifo|hold|files.img|$F; e[fds[4]].update(type='FILE_GHOST_NODE', path='$T/alice/rmfifo', mode=0o10600, flags=1, contents=$RM_NODE)|not_there $T/alice/rmfifo"
"removed-link-bob|hold|files.img|$F; e[fds[4]].update(type='FILE_GHOST_NODE', path='$B/d/lnk', mode=0o120777, flags=0o10000000, contents=dict($RM_NODE, link_target='/etc/shadow'))|not_there $B/d/lnk"
"removed-link-empty|hold|files.img|$F; e[fds[4]].update(type='FILE_GHOST_NODE', path='$T/alice/lnk', mode=0o120777, flags=0o10000000, contents=$RM_NODE)|refused_only a link without a target"
"removed-fifo-bob|hold|files.img|$F; e[fds[5]].update(path='$B/rmfifo', contents=$RM_NODE)|not_there $B/rmfifo"
"removed-cwd-etc|counter|core|E.update(cwd='/etc/ckpt-sec-cwd (deleted)', cwd_removed_mode=0o40755, cwd_uid=0, cwd_gid=0, cwd_ino=1, cwd_fd=-1)|not_there /etc/ckpt-sec-cwd"
"proc-pid-1|hold|files.img|$F; e[fds[3]].update(type='FILE_PROC', path='/proc/1/environ', proc=dict(pid=1, sub='/environ'))|refused_only /proc/1/environ"
"proc-tid-1|hold|files.img|$F; e[fds[3]].update(type='FILE_PROC', path='/proc/1/environ', proc=dict(pid=ROOT, tid=1, sub='/environ'))|refused_only /proc/ROOT/task/1/environ"
"proc-dotdot|hold|files.img|$F; e[fds[3]].update(type='FILE_PROC', path='/proc/1/environ', proc=dict(pid=ROOT, sub='/../1/environ'))|refused_only /proc/ROOT/../1/environ"
"proc-root-shadow|hold|files.img|$F; e[fds[3]].update(type='FILE_PROC', path='/etc/shadow', proc=dict(pid=ROOT, sub='/root/etc/shadow'))|holds /etc/shadow"
"proc-outside-environ-1|hold|files.img|$F; e[fds[3]].update(type='FILE_PROC', path='/proc/1/environ', proc=dict(pid=1, sub='/environ', outside=True, start_ticks=$PID1_TICKS, boot_id='$BOOT_ID'))|refused_only /proc/1/environ, root's"
"proc-outside-root-1|hold|files.img|$F; e[fds[3]].update(type='FILE_PROC', path='/proc/1/root', proc=dict(pid=1, sub='/root/etc/shadow', outside=True, start_ticks=$PID1_TICKS, boot_id='$BOOT_ID'))|holds /etc/shadow"
"proc-dead-pid-1|hold|files.img|$F; e[fds[3]].update(type='FILE_PROC', path='/proc/1/environ', proc=dict(pid=1, sub='/environ', dead=True))|refused_only a helper numbered 1"
"proc-dead-tid|hold|files.img|$F; e[fds[3]].update(type='FILE_PROC', path='/proc/1/environ', proc=dict(pid=ROOT, tid=ROOT, sub='/environ', dead=True))|refused_only a dead entry with a tid"
"proc-dead-cwd-1|counter|core|E['cwd_proc_dead'] = 1|cwd_not '/proc/1 (deleted)'"
"proc-dead-cwd-big|counter|core|E['cwd_proc_dead'] = 1 << 31|true"
"pty-input-huge|ptmx|files.img|$F; e[fds[3]]['tty'].update(hangup=True, input_tail='61' * 5000)|refused_only 5000 bytes of pty input|bad terminal entry"
"pty-input-never-opened|ptmx|files.img|$F; e[fds[3]]['flags'] = 2; e[fds[3]]['tty']['input_tail'] = '61'|refused_only input for a slave never opened|never opened"
"pty-input-lines-raw|ptmx|files.img|$F; t = e[fds[3]]['tty']; t.update(hangup=True, input_lines=['610a']); t['termios']['lflag'] = 0|refused_only input lines in non-canonical mode|bad terminal entry"
"pty-input-extproc|ptmx|files.img|$F; t = e[fds[3]]['tty']; t.update(hangup=True, input_tail='61'); t['termios']['lflag'] += 0o200000|refused_only input in EXTPROC mode|bad terminal entry"
"pty-dead-master|ptmx|files.img|$F; e[fds[3]]['tty']['dead'] = True|refused_only a master marked dead|bad terminal entry"
"ctty-on-file|hold|files.img|$F; e[fds[3]].update(ctty_sid=ROOT, ctty_fg_pgrp=0)|refused_only a file as controlling terminal|controlling terminal of session"
"ctty-on-pty|ptmx|files.img|$F; e[fds[3]].update(ctty_sid=ROOT)|refused_only a pty master with a system ctty|controlling terminal of session"
"ctty-console-pid-1|hold|files.img|$F; e[fds[3]].update(path='/dev/console', mode=0o20600, rdev=0x501, ctty_sid=1)|refused_only the console for session 1|controlling terminal of session"
"ctty-console-fg-1|hold|files.img|$F; e[fds[3]].update(path='/dev/console', mode=0o20600, rdev=0x501, ctty_sid=ROOT, ctty_fg_pgrp=1)|refused_only the console with group 1 in the foreground|controlling terminal of session"
"raw-socket|relay|files.img|$F; ${INET_AT3}type=3, protocol=17, src_port=17)|no_raw_socket|a raw socket .*needs CAP_NET_RAW"
"raw-socket-icmp|relay|files.img|$F; ${INET_AT3}type=3, protocol=1, src_port=1)|no_raw_socket|needs CAP_NET_RAW"
"raw-protocol-huge|relay|files.img|$F; ${INET_AT3}type=3, protocol=1 << 20, src_port=0)|no_raw_socket|bad inet socket"
"ping-as-stream|relay|files.img|$F; ${INET_AT3}type=1, protocol=1, src_port=0)|no_raw_socket|bad inet socket"
"raw-as-dgram|relay|files.img|$F; ${INET_AT3}type=2, protocol=255, src_port=0)|no_raw_socket|bad inet socket"
"packet-socket|hold|files.img|$F; $PK(dict(type=3, protocol=3))|refused_only a packet socket|needs CAP_NET_RAW"
"packet-ring-huge|hold|files.img|$F; $PK(dict(type=3, protocol=0, rx_ring=dict(block_size=1 << 31, block_nr=1 << 20, frame_size=4096, frame_nr=1)))|refused_only a ring of 2^51 bytes|bad packet socket"
"packet-ifname-slash|hold|files.img|$F; $PK(dict(type=2, protocol=3, ifindex=1, ifname='../lo'))|refused_only a device named ../lo|bad packet socket"
"netlink-audit|hold|files.img|$F; $NL(dict(type=3, protocol=9, portid=4000000001))|refused_only an audit socket|bad netlink socket"
"netlink-xfrm-group|hold|files.img|$F; $NL(dict(type=3, protocol=6, portid=4000000003, groups=[1]))|refused_only an XFRM group (CAP_NET_ADMIN)|netlink socket: cannot recreate"
"netlink-group-40|hold|files.img|$F; $NL(dict(type=3, protocol=0, portid=4000000002, dst_portid=0, dst_group=40))|refused_only a peer group past 32|bad netlink socket"
"pagemap-block-skip-past|counter|pagemap|E.update(block_pages=E['nr_pages'], block_skip=1)|refused_only pages past the end of their block|pages outside its block"
"pagemap-block-huge|counter|pagemap|E.update(block_pages=1 << 31, block_skip=0)|refused_only a block of 2^31 pages|pages outside its block"
"pagemap-block-larger|counter|pagemap|E.update(block_pages=E.get('block_pages', E['nr_pages']) + 1)|refused_only a block larger than its data|bad lz4 data|raw chunk of the wrong length"
"pagemap-block-crc-liar|counter|pagemap|e[1].update(offset=E['offset'], comp_len=E['comp_len'], raw=E['raw'], crc=E['crc'] ^ 1, block_pages=E.get('block_pages', E['nr_pages']), block_skip=0, nr_pages=min(e[1]['nr_pages'], E['nr_pages']))|refused_only a block shared with a wrong crc|checksum mismatch"
)

run_items
finish
