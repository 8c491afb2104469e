# The job's output (a file of its own it appends to) is cut back at
# restore to its size at the dump: a job restored from an older set does
# not write lines twice (regfile.c, docs/files.md).  Off scratch: below
# /tmp a held file would be kept with the set instead.
cr_program(output)
cr_case(cr_output_cut output 60 --restore-after-exit -- cut)
cr_case(cr_output_keep output 60 --restore-after-exit --restore-opt --keep-later-output -- keep)
# Another user's file the job appends to (a shared log) is left alone.
cr_case(cr_output_shared output 60 --restore-after-exit -- shared)
set_tests_properties(cr_output_cut cr_output_keep cr_output_shared PROPERTIES
	ENVIRONMENT CR_TMPDIR=/var/lib/ckpt-tests)
