# Shared memory and memory state (libckpt/shmem.c, sysvipc.c, mem.c,
# restore-mem.c): MAP_SHARED anonymous memory shared across fork, POSIX
# shm, System V shm and semaphores, madvise/mlock state.
cr_program(shmem)
cr_case(cr_shmem_anon shmem 60 -- anon)
cr_case(cr_shmem_anon_twice shmem 120 --leave-running-twice -- anon)
cr_case(cr_shmem_posix shmem 60 -- posix)
# The janitor removes the IPC objects once the dump killed the tree: the
# restore must recreate them.
cr_case(cr_shmem_sysv shmem 60 --helper $<TARGET_FILE:cr-shmem> --helper-arg janitor -- sysv)
# In a fresh PID namespace our init must not keep the segments attached.
cr_case(cr_shmem_sysv_pidns shmem 60 --helper $<TARGET_FILE:cr-shmem> --helper-arg janitor
	--restore-opt --pidns --restore-opt always -- sysv)
cr_case(cr_shmem_advice shmem 60 -- advice)
# System V objects of another IPC namespace are not ours to see: refused.
cr_case(bad_dump_ipcns shmem 60 --expect-dump-fail --expect-msg %p --expect-msg "IPC namespace"
	-- ipcns)
# Guard pages (MADV_GUARD_INSTALL) come back where they were (mem.c
# read_guards, restore-mem.c install_guards).
cr_case(cr_shmem_guard shmem 60 -- guard)
cr_case(cr_shmem_guard_pidns shmem 60 --restore-opt --pidns --restore-opt always -- guard)
foreach(k posix sysv advice ipcns guard)
	add_test(NAME selfcheck_shmem_${k} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-shmem> ${k})
	set_tests_properties(selfcheck_shmem_${k} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
# Pages a forked child shares copy-on-write with its parent (and its own
# child) are shared again after the restore; zero pages of a private file
# mapping stay zero (restore-mem.c adopt_slot, mem.c add_run).
cr_program(cow)
cr_case(cr_cow cow 60)
cr_case(cr_cow_twice cow 120 --leave-running-twice)
cr_case(cr_cow_pidns cow 60 --restore-opt --pidns --restore-opt always)
# A fragmented heap (runs of a few pages between holes, zero pages inside
# runs, a run longer than a block, runs split by a VMA boundary, COWed
# pages of a private file mapping): the page writer stores a batch of runs
# as one block shared by their chunks (storage/pages.c); every page comes
# back and the holes stay holes.
cr_program(fragmem)
cr_case(cr_mem_fragmented fragmem 90)
cr_case(cr_mem_fragmented_twice fragmem 120 --leave-running-twice)
# Text and random pages alternate: the random ones go raw, in blocks of
# their own gathered from where they were read, to a page server too.
cr_case(cr_mem_fragmented_page_server fragmem 90 --page-server)
# From a cold page cache (--cold) a restore reads its pages with O_DIRECT
# (storage/pages-read.c): raw blocks straight into place, lz4 blocks and
# blocks shared by runs through aligned buffers.
cr_case(cr_mem_fragmented_cold fragmem 90 --cold)
cr_case(cr_mem_fragmented_cold_twice fragmem 120 --cold --leave-running-twice)
