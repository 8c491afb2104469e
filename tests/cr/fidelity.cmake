# State a restore must bring back exactly (issue 15): fd owners and
# signals (files.c), memfd and ghost file attributes, holes and exec
# (memfd.c, restore-mem.c), the stop signal (freeze.c, restore-finish.c),
# membarrier registrations, oom_score_adj and loginuid (taskstate.c), a
# chroot with its cwd (core.c).
cr_program(fidelity)
set(FID_CASES fown fown-outside memfd-mode memfd-exec memfd-exec-map ghost-holes ghost-times stopped-tstp
	membarrier oom loginuid chroot)
foreach(k ${FID_CASES})
	string(REPLACE "-" "_" n ${k})
	if(NOT k STREQUAL fown-outside)
		cr_case(cr_fid_${n} fidelity 60 -- ${k})
	endif()
	add_test(NAME selfcheck_fid_${n} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-fidelity> ${k})
	set_tests_properties(selfcheck_fid_${n} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
# The owner, a pid, in a fresh PID namespace; an owner outside the tree
# is refused by name.
cr_case(cr_fid_fown_pidns fidelity 60 --restore-opt --pidns --restore-opt always -- fown)
cr_case(bad_dump_fown_outside fidelity 60 --expect-dump-fail --expect-msg %p
	--expect-msg "outside the tree" -- fown-outside)
set_tests_properties(cr_fid_stopped_tstp PROPERTIES ENVIRONMENT CR_STATES_OK=T)
cr_case(cr_fid_stopped_tstp_pidns fidelity 60 --restore-opt --pidns --restore-opt always
	-- stopped-tstp)
set_tests_properties(cr_fid_stopped_tstp_pidns PROPERTIES ENVIRONMENT CR_STATES_OK=T)
# Dumps with -R first: looking for holes leaves the running program's
# offset alone.
cr_case(cr_fid_ghost_holes_leave_running fidelity 90 --leave-running-twice -- ghost-holes)
