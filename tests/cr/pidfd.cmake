# pidfds (libckpt/pidfd.c): of the tree's own processes, live, zombie and
# dead, shared by several processes; those of processes outside the tree or
# of threads other than a main one are refused by name.
cr_program(pidfd)
cr_case(cr_pidfd pidfd 60 -- pidfd)
cr_case(cr_pidfd_pidns pidfd 60 --restore-opt --pidns --restore-opt always -- pidfd)
cr_case(bad_dump_pidfd_outside pidfd 60 --expect-dump-fail --expect-msg %p --expect-msg 42
	--expect-msg "outside the tree" -- outside)
cr_case(bad_dump_pidfd_thread pidfd 60 --expect-dump-fail --expect-msg %p --expect-msg 42
	--expect-msg "not a main thread" -- thread)
set_tests_properties(cr_pidfd cr_pidfd_pidns PROPERTIES ENVIRONMENT CR_STATES_OK=Z)
