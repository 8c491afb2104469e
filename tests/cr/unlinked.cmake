# What a process holds after its name was removed: directories, a cwd,
# FIFOs, device nodes, O_TMPFILE files (libckpt/ghost-node.c, pipes.c,
# core.c, memfd.c).
cr_program(unlinked)
foreach(k dir cwd cwd-fd fifo dev tmpfile mmap-memfd other-link)
	string(REPLACE "-" "_" n ${k})
	cr_case(cr_unlinked_${n} unlinked 60 -- ${k})
endforeach()
# Mapped only, no fd: on disk (CR_DISK_DIR), not tmpfs, which shmem.c kept already.
foreach(k mmap-private mmap-shared mmap-two-names)
	string(REPLACE "-" "_" n ${k})
	cr_case(cr_unlinked_${n} unlinked 60 -- ${k})
	set_tests_properties(cr_unlinked_${n} PROPERTIES ENVIRONMENT ${CR_DISK_DIR})
endforeach()
# Not the same object if made again: a device other than the memory ones,
# and a file whose name was removed but which is linked in another
# directory (in the same one: other-link, above).
cr_case(bad_dump_unlinked_dev unlinked 60 --expect-dump-fail --expect-msg %p
	--expect-msg "removed device node 1:11 is not supported" -- dev-other)
cr_case(bad_dump_unlinked_linked_elsewhere unlinked 60 --expect-dump-fail --expect-msg %p
	--expect-msg "none in its directory" -- linked-elsewhere)
foreach(k dir cwd cwd-fd fifo dev tmpfile mmap-private mmap-shared mmap-two-names mmap-memfd dev-other
		linked-elsewhere other-link)
	string(REPLACE "-" "_" n ${k})
	add_test(NAME selfcheck_unlinked_${n} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-unlinked> ${k})
	set_tests_properties(selfcheck_unlinked_${n} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
# Dumped while left running (nothing of the tree is changed by the dump),
# and a restored tree dumped and restored again (what came back removed is
# removed again, and found so).
foreach(k dir fifo cwd-fd mmap-shared mmap-two-names)
	string(REPLACE "-" "_" n ${k})
	cr_case(cr_unlinked_${n}_leave_running unlinked 90 --leave-running-twice -- ${k})
	cr_case(cr_unlinked_${n}_redump unlinked 90 --redump -- ${k})
	set_tests_properties(cr_unlinked_${n}_leave_running cr_unlinked_${n}_redump
		PROPERTIES ENVIRONMENT ${CR_DISK_DIR})
endforeach()
