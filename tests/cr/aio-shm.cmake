# AIO contexts and shared anonymous memory opened as a file (libckpt/aio.c,
# shmem-fd.c).
cr_program(aio-shm)
cr_case(cr_aio aio-shm 60 -- aio)
cr_case(cr_aio_twice aio-shm 120 --leave-running-twice -- aio)
cr_case(cr_shmem_fd aio-shm 60 -- shmem-fd)
cr_case(cr_shmem_fd_twice aio-shm 120 --leave-running-twice -- shmem-fd)
# A ring whose header the program overwrote cannot be made again through
# the kernel: refused by name.
cr_case(bad_dump_aio_scribbled aio-shm 60 --expect-dump-fail --expect-msg %p
	--expect-msg "AIO ring" --expect-msg "overwritten" -- aio-scribbled)
# A child's ring mapping inherited across fork is no context of its own
# (the kernel keeps contexts to the mm that made them): refused by name.
cr_case(bad_dump_aio_forked aio-shm 60 --expect-dump-fail --expect-msg "AIO ring"
	--expect-msg "inherited across fork" -- aio-forked)
# Shared anonymous memory mapped privately through an fd since closed (it
# once made a file "/dev/zero.ckpt-shm-INO" in /dev, and failed).
cr_case(cr_shmem_priv_closed aio-shm 60 -- shmem-priv-closed)
foreach(k shmem-fd aio-scribbled aio-forked shmem-priv-closed)
	string(REPLACE "-" "_" n ${k})
	add_test(NAME selfcheck_aio_shm_${n} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-aio-shm> ${k})
	set_tests_properties(selfcheck_aio_shm_${n} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
