# Event and special fds, memfds, unlinked files, file locks, directories
# (libckpt/evfd.c, epoll.c, inotify.c, memfd.c, locks.c, regfile.c).
cr_program(evfd)
foreach(k eventfd signalfd timerfd epoll epoll-moved inotify inotify-gone memfd ghost locks dirs)
	string(REPLACE "-" "_" k_ ${k})
	cr_case(cr_evfd_${k_} evfd 60 -- ${k})
endforeach()
# An unlinked file over --ghost-limit is refused by name, and kept below it.
cr_case(bad_dump_ghost_big evfd 60 --expect-dump-fail --expect-msg %p --expect-msg "ghost limit"
	-- ghost-big)
cr_case(cr_evfd_ghost_limit evfd 60 --dump-opt --ghost-limit --dump-opt 4M -- ghost-big)
# A watch on a file with no name and no fd of the tree holding it.
cr_case(bad_dump_inotify_mapped evfd 60 --expect-dump-fail --expect-msg %p --expect-msg 42
	--expect-msg "no fd of the tree holds it" -- inotify-mapped)
# A POSIX lock on a file the process maps would be dropped by the restore.
cr_case(bad_dump_lock_mapped evfd 60 --expect-dump-fail --expect-msg %p --expect-msg "also maps"
	-- locks-mapped)
# A file that changed between the dump and the restore is refused, naming it.
cr_case(bad_restore_changed_file holdfile 60 --corrupt append:held-file --expect-msg held-file
	--expect-msg "changed since the dump: size")
set_tests_properties(bad_restore_changed_file PROPERTIES ENVIRONMENT ${CR_DISK_DIR})
# The program's own checks, case by case, without a checkpoint.
foreach(k signalfd timerfd epoll epoll-moved inotify inotify-gone memfd ghost ghost-big locks locks-mapped
		dirs)
	string(REPLACE "-" "_" n ${k})
	add_test(NAME selfcheck_evfd_${n} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-evfd> ${k})
	set_tests_properties(selfcheck_evfd_${n} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
