# dump --check-only: the dump's refusals on the running tree, nothing
# seized, stopped or written (what `ckptctl checkpoint able` runs).
add_test(NAME cr_check_only COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check-only.sh
	$<TARGET_FILE:ckptctl> $<TARGET_FILE:cr-counter> $<TARGET_FILE:cr-badfd>
	$<TARGET_FILE:cr-inet-sk> $<TARGET_FILE:cr-sk-helper> $<TARGET_FILE:cr-tty>)
set_tests_properties(cr_check_only PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
# A System V segment made by an earlier process with a reused pid is not the tree's.
add_test(NAME bad_shm_pid_reuse COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/shm-pid-reuse.sh
	$<TARGET_FILE:ckptctl>)
set_tests_properties(bad_shm_pid_reuse PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77 LABELS cr)
# A refused dump reads no memory first.
add_test(NAME bad_dump_refused_first COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/refuse-first.sh
	$<TARGET_FILE:ckptctl> $<TARGET_FILE:cr-badfd>)
set_tests_properties(bad_dump_refused_first PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77 LABELS cr)
# An srun step by hand (dump --step), restored under the step proxy.
if(TARGET ckpt-step)
	add_test(NAME cr_step_graft COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/step-graft.sh
		$<TARGET_FILE:ckptctl> $<TARGET_FILE:ckpt-step>)
	set_tests_properties(cr_step_graft PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77 LABELS cr)
endif()
# --inherit-fd fd[N]:root-fd:K: the root's stdout, a pipe to a reader
# outside the tree, is the restore's (a node's part of a multi-node set).
add_test(NAME cr_inherit_root_fd COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/inherit-root-fd.sh
	$<TARGET_FILE:ckptctl> $<TARGET_FILE:ckpt-counter>)
set_tests_properties(cr_inherit_root_fd PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77 LABELS cr)
