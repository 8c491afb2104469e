# The job's output (a file of its own it appends to) is cut back at
# restore to its size at the dump: a job restored from an older set does
# not write lines twice (regfile.c, docs/files.md).  Off scratch: below
# /tmp a held file would be kept with the set instead.
cr_program(output)
cr_case(cr_output_cut output 60 --restore-after-exit -- cut)
cr_case(cr_output_keep output 60 --restore-after-exit --restore-opt --keep-later-output -- keep)
# Another user's file the job appends to (a shared log) is left alone.
cr_case(cr_output_shared output 60 --restore-after-exit -- shared)
# Cut shorter after the dump (Slurm truncates --output at a requeue
# without --open-mode=append): put back from the copy kept with the set
# (output-copy.c); with the copy limit under its size, refused by name.
cr_case(cr_output_requeue output 60 --restore-after-exit -- requeue)
cr_case(cr_output_requeue_short output 60 --restore-after-exit -- requeue-short)
cr_case(cr_output_requeue_long output 60 --restore-after-exit -- requeue-long)
cr_case(bad_restore_output_over_cap output 60 --restore-after-exit
	--dump-opt --output-copy-limit --dump-opt 100 --expect-restore-fail
	--expect-msg out.log --expect-msg "no copy" --expect-msg --open-mode=append -- over-cap)
set_tests_properties(cr_output_cut cr_output_keep cr_output_shared cr_output_requeue
	cr_output_requeue_short cr_output_requeue_long bad_restore_output_over_cap PROPERTIES
	ENVIRONMENT CR_TMPDIR=/var/lib/ckpt-tests)
