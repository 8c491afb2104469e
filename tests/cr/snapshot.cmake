# Copy-on-write snapshot dumps (libckpt/snapshot.c): a dump that leaves
# the tree running (-R) thaws it once all but its private memory is
# dumped and reads that from a snapshot.  --dump-running makes the cycle's
# dump such a dump (then kills the tree); --no-snapshot forces the frozen
# copy (CR_NO_SNAPSHOT=1 does it for any case).
cr_program(snapcut)
# four threads writing all the while: the restore is the frozen moment
cr_case(cr_snapshot_cut snapcut 120 --dump-running --dump-opt --stats
	--expect-dump-out "snapshot_tasks: 1")
cr_case(cr_snapshot_cut_frozen snapcut 120 --dump-running --no-snapshot --dump-opt --stats
	--expect-dump-out "snapshot_tasks: 0")
# restored into a PID namespace of its own and dumped again: C2's reaper
# is our init there, outside the tree
cr_case(cr_snapshot_cut_pidns_redump snapcut 120 --dump-running --restore-opt --pidns
	--restore-opt always --redump --dump-opt --stats --expect-dump-out "snapshot_tasks: 1")
# --stats says where the frozen window went, step by step (phase.c): the
# snapshot's fork among them
cr_case(cr_snapshot_phases snapcut 120 --dump-running --dump-opt --stats
	--expect-dump-out "frozen_snapshot_ms: ")
# existing cycles through a snapshot dump
cr_case(cr_snapshot_counter counter 60 --dump-running)
cr_case(cr_snapshot_threads threads 90 --dump-running)
cr_case(cr_snapshot_cow cow 90 --dump-running --dump-opt --stats
	--expect-dump-out "frozen_copy_tasks: 0")
cr_case(cr_snapshot_fragmem fragmem 90 --dump-running)
cr_case(cr_snapshot_shmap shmap 90 --dump-running)
# MADV_DONTFORK / MADV_WIPEONFORK memory: no snapshot holds it, copied frozen
cr_case(cr_snapshot_advice shmem 90 --dump-running --dump-opt --stats
	--expect-dump-out "frozen_copy_tasks: 1" -- advice)
cr_case(cr_snapshot_pidns counter 90 --dump-running --restore-opt --pidns --restore-opt always)
# the -R cycles with the frozen copy
cr_case(cr_leave_running_twice_frozen counter 120 --leave-running-twice --check-progress
	--no-snapshot)
cr_case(cr_cow_twice_frozen cow 120 --leave-running-twice --no-snapshot)
# kill -9 of ckptctl during snapshot dumps: the job runs on, and no
# snapshot process outlives its dump (cr-run checks after every dump)
cr_case(killdump_snapshot snapcut 300 --kill-dump 10)
# a subreaper in the tree (the root here) would be C2's reaper: no
# snapshot, copied frozen; seccomp too
cr_case(cr_snapshot_subreaper orphan-pgrp 90 --dump-running --dump-opt --stats
	--expect-dump-out "snapshot_tasks: 0")
# through the page server: the snapshot's pages go straight to it
cr_case(cr_snapshot_threads_page_server threads 90 --dump-running --page-server)
cr_case(cr_snapshot_seccomp seccomp 60 --dump-running --dump-opt --stats
	--expect-dump-out "snapshot_tasks: 0")
