# Files under /proc/PID of the tree itself (libckpt/procfile.c): a child's
# /proc/<parent>/stat and directory, the parent's /proc/<child>/stat (also
# in a fresh PID namespace, through its own /proc), /proc/self/maps at 0
# and at its end, the main thread's /proc/thread-self and /proc/PID/task,
# a cwd in, and fds on, the /proc/PID of a child reaped since (made again
# on a helper with its number).
# A live process outside the tree (zdtm pid_file): opened again where its
# number is still that process (start time, boot id), else the restore
# fails naming it.
# Refused by name: /proc of a thread of a process outside the tree, of a thread other
# than a main one, a position inside the text /proc makes at each read
# (also of a process that has exited).
cr_program(procfiles)
cr_case(cr_procfiles_parent procfiles 60 -- parent)
cr_case(cr_procfiles_parent_pidns procfiles 60 --restore-opt --pidns --restore-opt always
	-- parent)
cr_case(cr_procfiles_maps procfiles 60 -- maps)
cr_case(cr_procfiles_thread procfiles 60 -- thread)
cr_case(cr_procfiles_deadcwd procfiles 60 -- deadcwd)
cr_case(cr_procfiles_deadfd procfiles 60 -- deadfd)
cr_case(cr_procfiles_deadfd_pidns procfiles 60 --restore-opt --pidns --restore-opt always -- deadfd)
cr_case(cr_procfiles_deadcwd_pidns procfiles 60 --restore-opt --pidns --restore-opt always
	-- deadcwd)
# fds on namespaces: the namespace the restored process is in
cr_case(cr_procfiles_ns procfiles 60 -- ns)
cr_case(cr_procfiles_ns_pidns procfiles 60 --restore-opt --pidns --restore-opt always -- ns)
cr_case(bad_dump_procfiles_nsout procfiles 60 --expect-dump-fail --expect-msg %p
	--expect-msg 42 --expect-msg "no process of the tree is in" -- nsout)
# a live process outside the tree: opened again where it is the same one
cr_case(cr_procfiles_outside procfiles 60 -- outside)
cr_case(bad_restore_procfiles_outside_pidns procfiles 60 --restore-opt --pidns
	--restore-opt always --expect-restore-fail --expect-msg "not the process of the dump"
	-- outside)
cr_case(bad_dump_procfiles_outthread procfiles 60 --expect-dump-fail --expect-msg %p
	--expect-msg 42 --expect-msg "outside the tree" -- outthread)
cr_case(bad_dump_procfiles_thread procfiles 60 --expect-dump-fail --expect-msg %p
	--expect-msg 42 --expect-msg "not a main thread" -- tthread)
cr_case(bad_dump_procfiles_middle procfiles 60 --expect-dump-fail --expect-msg %p
	--expect-msg 42 --expect-msg "position inside text" -- middle)
cr_case(bad_dump_procfiles_exited procfiles 60 --expect-dump-fail --expect-msg %p
	--expect-msg 42 --expect-msg "has exited" -- exited)
