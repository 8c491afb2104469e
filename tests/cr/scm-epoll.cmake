# An epoll that only socket queues hold, fds in flight (libckpt/epoll.c;
# zdtm scm05).
cr_program(scm-epoll)
cr_case(cr_scm_epoll_alone scm-epoll 60 -- alone)
# A watched file that only a process outside the tree holds.
cr_case(bad_dump_scm_epoll_outside scm-epoll 60 --expect-dump-fail --expect-msg SCM_RIGHTS
	--expect-msg "no process of the tree holds" -- outside)
add_test(NAME selfcheck_scm_epoll_outside COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
	$<TARGET_FILE:cr-scm-epoll> outside)
set_tests_properties(selfcheck_scm_epoll_outside PROPERTIES TIMEOUT 60 LABELS selfcheck)
