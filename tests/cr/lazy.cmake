# Lazy restore (restore --lazy, libckpt/lazy-serve.c, docs/lazy-restore.md):
# the tree runs at once, its private memory filled on first touch and
# streamed in the background by the page server.
cr_program(lazymem)
cr_case(cr_lazy_counter counter 60 --restore-opt --lazy)
cr_case(cr_lazy_threads threads 90 --restore-opt --lazy)
# pages shared copy-on-write with a child stay shared: such VMAs are eager
cr_case(cr_lazy_cow cow 60 --restore-opt --lazy)
# -d: the page server stays behind in the background
cr_case(cr_lazy_detach lazymem 120 --restore-opt --lazy --restore-opt -d -- churn 128)
cr_case(cr_lazy_pidns counter 60 --restore-opt --lazy --restore-opt --pidns --restore-opt always)
cr_case(cr_lazy_memory_256m lazymem 120 --restore-opt --lazy -- plain 256)
# fork, mremap, munmap + mmap, MADV_DONTNEED while the server streams
cr_case(cr_lazy_churn lazymem 120 --restore-opt --lazy -- churn 256)
# A page that cannot be read mid-stream (CKPT_TEST_FAULT=lazy-read: every
# read once the tree runs) kills the whole tree, the restore exits 1 with
# one line naming the pid and the pages.
cr_case(bad_restore_lazy_read lazymem 90 --restore-opt --lazy --expect-restore-fail
	--expect-msg %p --expect-msg "cannot be read" -- plain 256)
set_tests_properties(bad_restore_lazy_read PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=lazy-read)
foreach(k plain churn)
	add_test(NAME selfcheck_lazymem_${k} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-lazymem> ${k} 64)
	set_tests_properties(selfcheck_lazymem_${k} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
# The page server killed mid-stream (CKPT_TEST_FAULT=lazy-die: it SIGKILLs
# itself once the tree runs): its uffds would close and the pages not yet
# in would read as zeros; its watchdog, which shares its fd table, kills
# the whole tree instead, with one line.
cr_case(bad_restore_lazy_server_killed lazymem 90 --restore-opt --lazy --expect-restore-fail
	--expect-msg "page server" --expect-msg "died before every page was in" -- plain 256)
set_tests_properties(bad_restore_lazy_server_killed PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=lazy-die)
# A pages file truncated before the restore: a lazy load checks its size
# (not its bytes: each chunk's crc is checked as it is read), so it is
# still refused before anything is created.
cr_case(bad_restore_lazy_truncated_pages counter 60 --restore-opt --lazy --corrupt truncate-pages
	--expect-msg pages-%p)
# A tree whose memory the page server is still filling (CKPT_TEST_FAULT=
# lazy-slow: 0.3 s between streamed chunks) is dumped again at once: its
# missing pages are in neither pagemap nor a read, and the set would keep
# zeros, so the dump is refused by name and the tree goes on; once all is
# in, the dump and its restore keep every byte.
cr_case(bad_dump_lazy_unfilled lazymem 120 --restore-opt --lazy --redump-refused
	--expect-msg %p --expect-msg "still being filled" -- plain 96)
set_tests_properties(bad_dump_lazy_unfilled PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=lazy-slow)
# The page server is forked from the restore before it lets go of the
# job's System V segments: it must not keep them attached (the job checks
# shm_nattch while the server still streams, CKPT_TEST_FAULT=lazy-slow).
foreach(ns never always)
	cr_case(cr_lazy_shmem_sysv_${ns} shmem 60 --restore-opt --lazy --helper
		$<TARGET_FILE:cr-shmem> --helper-arg janitor --restore-opt --pidns --restore-opt ${ns}
		-- sysv)
	# the server still streams when the job checks
	set_tests_properties(cr_lazy_shmem_sysv_${ns} PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=lazy-slow)
endforeach()
