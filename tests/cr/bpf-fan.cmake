# BPF maps and fanotify (libckpt/bpfmap.c, fanotify.c): maps of plain keys
# and values, frozen, per-CPU, shared; fanotify inode and mount marks.  A
# map whose contents cannot be read as they are, one map behind two open
# files, and unread fanotify events are refused by name.
cr_program(bpf-fan)
foreach(k bpf-array bpf-hash fanotify fanotify-fid)
	string(REPLACE "-" "_" k_ ${k})
	cr_case(cr_${k_} bpf-fan 60 -- ${k})
endforeach()
cr_case(bad_dump_bpf_queue bpf-fan 60 --expect-dump-fail --expect-msg %p --expect-msg 42
	--expect-msg "BPF map" -- bpf-queue)
cr_case(bad_dump_bpf_twice bpf-fan 60 --expect-dump-fail --expect-msg %p
	--expect-msg "another open file" -- bpf-twice)
# A map that a bpffs pin or a program also holds (the copy restored would
# not be theirs).
cr_case(bad_dump_bpf_pinned bpf-fan 60 --expect-dump-fail --expect-msg %p --expect-msg 42
	--expect-msg "pinned at" -- bpf-pinned)
cr_case(bad_dump_bpf_prog bpf-fan 60 --expect-dump-fail --expect-msg %p --expect-msg 42
	--expect-msg "used by BPF program" -- bpf-prog)
cr_case(bad_dump_fanotify_queued bpf-fan 60 --expect-dump-fail --expect-msg %p --expect-msg 42
	--expect-msg "unread events" -- fanotify-queued)
foreach(k bpf-hash fanotify fanotify-fid bpf-queue bpf-twice bpf-pinned bpf-prog fanotify-queued)
	string(REPLACE "-" "_" n ${k})
	add_test(NAME selfcheck_bpf_fan_${n} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-bpf-fan> ${k})
	set_tests_properties(selfcheck_bpf_fan_${n} PROPERTIES TIMEOUT 60 LABELS selfcheck
		SKIP_RETURN_CODE 77)
endforeach()
