# State a restore must bring back exactly (issue 15): fd owners and
# signals (files.c), memfd and ghost file attributes, holes and exec
# (memfd.c, restore-mem.c), oom_score_adj and loginuid (taskstate.c).
cr_program(fidelity)
set(FID_CASES fown memfd-mode memfd-exec memfd-exec-map ghost-holes ghost-times oom loginuid)
foreach(k ${FID_CASES})
	string(REPLACE "-" "_" n ${k})
	cr_case(cr_fid_${n} fidelity 60 -- ${k})
	add_test(NAME selfcheck_fid_${n} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-fidelity> ${k})
	set_tests_properties(selfcheck_fid_${n} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
