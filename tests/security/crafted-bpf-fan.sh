#!/usr/bin/env bash
# Crafted BPF map and fanotify entries (libckpt/bpfmap.c, fanotify.c),
# each edited into a real dump of alice's: a map or a fanotify alice may
# not make (BPF_MAP_CREATE without CAP_BPF under
# kernel.unprivileged_bpf_disabled, FAN_UNLIMITED_QUEUE and mount marks
# without CAP_SYS_ADMIN), a mark on bob's unreadable file, and fields out
# of range (refused at load).  Each is refused in one line, or restored
# with exactly alice's powers (the kernel let her: what she could do
# herself).
. "$(dirname "$0")/lib.sh" "$@"
start_agent
B=$T/bob
as_bob sh -c "echo bob-secret >$B/secret; chmod 600 $B/secret"
as_alice sh -c "echo alice >$T/alice/f; mkdir $T/alice/d; mkfifo $T/alice/fifo; echo g >$T/alice/g"

# Base set: a holder of a file at fd 3 (the entry each item turns into a
# map or a fanotify).
alice_target hold hold "$T/alice/f" "$T/alice/d" "$T/alice/fifo" "$T/alice/g"
rm -f "$T/alice/g"
alice_dump "$SPAWNED" hold

F="fds = {f['fd']: f['file_id'] for f in read('fdinfo')['entries']}; x = e[fds[3]]; x.pop('path', None)"
MAP="dict(map_type=2, key_size=4, value_size=4, max_entries=4, map_flags=0, name='m', frozen=False, memlock=0, keys='', values='')"
MAP1="dict($MAP, keys='01000000', values='07000000')"
FAN="dict(flags=0x200, event_flags=0, marks=[])"
refused_only() { fail "pid $P restored: $*"; }

# name | base set | file | edit (imgedit.py) | check of the restored process $P | refusal
ITEMS=(
"bpf-map|hold|files.img|$F; x.update(type='FILE_BPF_MAP', flags=2, bpf_map=$MAP1)|true|BPF map"
"bpf-map-type|hold|files.img|$F; x.update(type='FILE_BPF_MAP', flags=2, bpf_map=dict($MAP, map_type=27))|refused_only a ring buffer|BPF map with a map type"
"bpf-map-sizes|hold|files.img|$F; x.update(type='FILE_BPF_MAP', flags=2, bpf_map=dict($MAP, keys='01000000', values='07'))|refused_only short values|keys and values that do not match"
"bpf-map-count|hold|files.img|$F; x.update(type='FILE_BPF_MAP', flags=2, bpf_map=dict($MAP, max_entries=1, keys='0100000002000000', values='0700000007000000'))|refused_only 2 entries of 1|keys and values that do not match"
"bpf-map-name|hold|files.img|$F; x.update(type='FILE_BPF_MAP', flags=2, bpf_map=dict($MAP, name='../../x'))|refused_only a bad name|a bad name"
"bpf-map-cpus|hold|files.img|$F; x.update(type='FILE_BPF_MAP', flags=2, bpf_map=dict($MAP, map_type=6, nr_cpus=100000))|refused_only 100000 CPUs|another number of CPUs"
"bpf-map-huge|hold|files.img|$F; x.update(type='FILE_BPF_MAP', flags=2, bpf_map=dict($MAP, key_size=1 << 30))|refused_only 1 GiB keys|bad key_size"
"bpf-map-mmap|hold|files.img|$F; x.update(type='FILE_BPF_MAP', flags=2, bpf_map=dict($MAP, map_flags=1 << 10))|refused_only an mmapable map|flags that are not restored"
"fanotify-unlimited|hold|files.img|$F; x.update(type='FILE_FANOTIFY', flags=2, fanotify=dict($FAN, flags=0x210))|refused_only FAN_UNLIMITED_QUEUE|cannot create the fanotify"
"fanotify-mark-bob|hold|files.img|$F; x.update(type='FILE_FANOTIFY', flags=2, fanotify=dict($FAN, marks=[dict(path='$B/secret', mflags=0, mask=2, ignored_mask=0)]))|refused_only a mark on $B/secret|fanotify inode mark on $B/secret"
"fanotify-mount|hold|files.img|$F; x.update(type='FILE_FANOTIFY', flags=2, fanotify=dict($FAN, marks=[dict(path='/', mount=True, mflags=0, mask=0x20, ignored_mask=0)]))|refused_only a mount mark|fanotify mount mark on /"
"fanotify-flags|hold|files.img|$F; x.update(type='FILE_FANOTIFY', flags=2, fanotify=dict($FAN, flags=0x80000200))|refused_only bad flags|flags that are not restored"
"fanotify-relative|hold|files.img|$F; x.update(type='FILE_FANOTIFY', flags=2, fanotify=dict($FAN, marks=[dict(path='etc/shadow', mflags=0, mask=2, ignored_mask=0)]))|refused_only a relative path|without an absolute path"
"fanotify-mflags|hold|files.img|$F; x.update(type='FILE_FANOTIFY', flags=2, fanotify=dict($FAN, marks=[dict(path='$T/alice/f', mflags=0x100, mask=2, ignored_mask=0)]))|refused_only FAN_MARK_FILESYSTEM|with bad flags"
)

run_items
finish
