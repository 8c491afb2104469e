# Terminals (libckpt/tty.c).  cr-run --on-pty lives in cr-pty.c.
target_sources(cr-run PRIVATE cr-pty.c)
# A pty pair of the tree: termios, window size, controlling terminal of a
# session leader of the tree and its foreground group, talk over it.
cr_program(tty pty-input.c)
cr_case(cr_tty_pty tty 60 -- pty)
# --shell-job: the test runs as the foreground job of a "shell" on a pty
# cr-run owns; the restoring ckptctl's terminal is another pty.
cr_case(cr_tty_shell_job tty 60 --on-pty --dump-opt --shell-job --restore-opt --shell-job
	-- shell-job)
# Without --shell-job the job's terminal is refused by name.
cr_case(bad_dump_tty_no_shell_job tty 60 --on-pty --expect-dump-fail --expect-msg %p
	--expect-msg "--shell-job" -- shell-job)
add_test(NAME selfcheck_tty_shell_job COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --on-pty
	-- $<TARGET_FILE:cr-tty> shell-job)
set_tests_properties(selfcheck_tty_shell_job PROPERTIES TIMEOUT 60 LABELS selfcheck)
# Output of the slave side that the master has not read (mpirun's ranks'
# output) is kept, in packet mode too.
cr_case(cr_tty_queued tty 60 -- pty-queued)
# Two dumps that leave it running first: each reads the queue and puts it back.
cr_case(cr_tty_queued_twice tty 60 --leave-running-twice -- pty-queued)
# Input the slaves have not read (pty-input.c): canonical lines, an end of
# file, a line not finished, raw bytes; twice left running first (each dump
# reads it and puts it back).
cr_case(cr_tty_input tty 60 -- pty-input)
cr_case(cr_tty_input_twice tty 60 --leave-running-twice -- pty-input)
# Slaves of a pair whose master is closed: hung up, their node removed.
cr_case(cr_tty_dead tty 60 -- pty-dead)
foreach(v input dead)
	add_test(NAME selfcheck_tty_${v} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
		-- $<TARGET_FILE:cr-tty> pty-${v})
	set_tests_properties(selfcheck_tty_${v} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
# What a new pair cannot keep is refused by name: input in EXTPROC mode,
# a slave that a process outside the tree has open.
cr_case(bad_dump_tty_extproc tty 60 --expect-dump-fail --expect-msg %p --expect-msg "EXTPROC"
	-- pty-extproc)
cr_case(bad_dump_tty_stopped tty 60 --expect-dump-fail --expect-msg %p --expect-msg "stopped"
	-- pty-stopped)
cr_case(bad_dump_tty_vhangup tty 60 --expect-dump-fail --expect-msg %p --expect-msg "vhangup"
	-- pty-vhangup)
cr_case(bad_dump_tty_outside tty 60 --expect-dump-fail --expect-msg "outside the dumped tree"
	-- pty-outside)
# The same in a fresh PID namespace.
cr_case(cr_tty_pty_pidns tty 60 --restore-opt --pidns --restore-opt always -- pty)
cr_case(cr_tty_shell_job_pidns tty 60 --on-pty --dump-opt --shell-job --restore-opt --shell-job
	--restore-opt --pidns --restore-opt always -- shell-job)
# An image of a shell job is restored only with --shell-job.
cr_case(bad_restore_tty_no_shell_job tty 60 --on-pty --dump-opt --shell-job --expect-restore-fail
	--expect-msg "restore with --shell-job" -- shell-job)
# A pty master's access mode: read-only comes back read-only, with its
# queue; write-only is refused (its queues cannot be read through it).
cr_case(cr_tty_master_rdonly tty 60 -- pty-rdonly)
cr_case(bad_dump_tty_master_wronly tty 60 --expect-dump-fail --expect-msg %p
	--expect-msg "write-only" -- pty-wronly)
# A snapshot dump's copies of the tasks (C2, libckpt/snapshot.c) hold
# copies of the tree's fds until they first run; CKPT_TEST_FAULT=
# snapshot-late keeps them so until the thaw: the slave they hold is no
# outsider's (tty.c checks outside holders before the snapshots exist).
cr_case(cr_tty_snapshot_late tty 60 --dump-running --expect-dump-out "snapshot_tasks: 3"
	--dump-opt --stats -- pty)
set_tests_properties(cr_tty_snapshot_late PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=snapshot-late)
