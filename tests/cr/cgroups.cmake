# Cgroup membership (libckpt/cgroup.c, cgroup-place.c): each case checks
# after the restore, in the restored processes, the cgroups they were
# dumped in (tests/cr/cgroups.c).  Without cgroup.img every one of them
# comes back in the restorer's cgroups and fails.
add_executable(cr-cgroups cgroups.c)
target_compile_options(cr-cgroups PRIVATE ${CR_FLAGS} ${CR_PLAIN})
target_link_options(cr-cgroups PRIVATE ${CR_PLAIN})
target_link_libraries(cr-cgroups PRIVATE crlib)
add_dependencies(cr-tests cr-cgroups)
foreach(m v1-sub named named-unmounted threads child empty props charged)
	string(REPLACE "-" "_" n ${m})
	add_test(NAME selfcheck_cgroup_${n} COMMAND $<TARGET_FILE:cr-run> --timeout 100 --no-cr --
		$<TARGET_FILE:cr-cgroups> ${m})
	set_tests_properties(selfcheck_cgroup_${n} PROPERTIES TIMEOUT 120 LABELS selfcheck)
endforeach()
# a sub-cgroup of a v1 controller (cpu), there at the restore or removed
cr_case(cr_cgroup_v1_sub cgroups 60 -- v1-sub)
cr_case(cr_cgroup_v1_sub_gone cgroups 60 --after-dump rmcgroups:cg-dirs -- v1-sub)
# a named v1 hierarchy the job mounted; unmounted again: mounted privately
cr_case(cr_cgroup_named cgroups 60 -- named)
cr_case(cr_cgroup_named_unmounted cgroups 60 -- named-unmounted)
# ... its cgroups removed after the dump: the dump recorded them through a
# private mount, with the empty sub-cgroup job/empty and its mode
cr_case(cr_cgroup_named_unmounted_gone cgroups 60 --after-dump rmnamed:- -- named-unmounted)
# in the root of a named hierarchy that is gone at the restore
cr_case(cr_cgroup_named_gone cgroups 60 --after-dump dropnamed:- -- named-gone)
# threads of one process in two cgroups (v1: "tasks" moves one thread)
cr_case(cr_cgroup_threads cgroups 60 -- threads)
# a child in another cgroup than its parent
cr_case(cr_cgroup_child cgroups 60 -- child)
# an empty sub-cgroup (mode 0750) below the process's, removed after the dump
cr_case(cr_cgroup_empty cgroups 60 --after-dump rmcgroups:cg-dirs -- empty)
# memory restored is charged to the process's memory cgroup (it enters
# its cgroups before its memory comes back)
cr_case(cr_cgroup_charged cgroups 60 -- charged)
# a cgroup made again gets its settings (libckpt/cgroup-props.c)
cr_case(cr_cgroup_props cgroups 60 --after-dump rmcgroups:cg-dirs -- props)
# --cgroups relative: the dumped root's cgroup is the one the restore runs
# in (what a requeued Slurm job needs), its child's below it
cr_case(cr_cgroup_relative cgroups 60 --after-dump relative:- --restore-opt --cgroups
	--restore-opt relative -- relative)
# --cgroup-root cpu:/ckpt-cr-PID/a=R: the process in R, its child in R/c
cr_case(cr_cgroup_root_remap cgroups 60 --after-dump remap:- -- relative)
# restore --verify names a thread left in another cgroup (test-only fault:
# the threads are not moved)
cr_case(bad_restore_verify_cgroup cgroups 60 --expect-restore-fail --expect-msg "cgroup cpu:"
	--expect-msg "restore --verify" -- v1-sub)
set_tests_properties(bad_restore_verify_cgroup PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=cgroup)
set_tests_properties(cr_cgroup_v1_sub cr_cgroup_v1_sub_gone cr_cgroup_named
	cr_cgroup_named_unmounted cr_cgroup_named_unmounted_gone cr_cgroup_threads cr_cgroup_child cr_cgroup_empty cr_cgroup_relative cr_cgroup_props cr_cgroup_charged cr_cgroup_root_remap
	bad_restore_verify_cgroup PROPERTIES RUN_SERIAL ON)
