# restore --inet-map, --keep-net-lock, net-unlock (docs/files.md,
# "Connections onto new addresses"): two network namespaces of the test's
# own, one TCP connection between them, both ends moved onto new
# addresses (inet-remap.sh); the refusals of bad maps; the same by a user
# through a ckptd in each namespace (user: label agent too).
add_executable(cr-remap-peer remap-peer.c)
target_compile_options(cr-remap-peer PRIVATE ${CR_FLAGS} ${CR_PLAIN})
target_link_options(cr-remap-peer PRIVATE ${CR_PLAIN})
add_dependencies(cr-tests cr-remap-peer)
foreach(m swap swap6 same refuse user)
	if(m STREQUAL refuse)
		set(n bad_restore_inet_map)
	else()
		set(n cr_inet_remap_${m})
	endif()
	math(EXPR t "120 * ${CR_TIME_SCALE}")
	add_test(NAME ${n} COMMAND $<TARGET_FILE:cr-remap-peer> reaper
		${CMAKE_CURRENT_SOURCE_DIR}/inet-remap.sh ${m} $<TARGET_FILE:ckptctl>
		$<TARGET_FILE:cr-remap-peer> $<TARGET_FILE:ckptd>)
	set_tests_properties(${n} PROPERTIES TIMEOUT ${t} SKIP_RETURN_CODE 77 LABELS cr)
endforeach()
set_tests_properties(cr_inet_remap_user PROPERTIES LABELS "cr;agent")
