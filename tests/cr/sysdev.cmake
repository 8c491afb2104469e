# A console of the machine, no process's controlling terminal (zdtm
# console): reopened by path, the same device again (regfile.c), else
# the restore is refused naming both devices.
cr_program(sysdev)
cr_case(cr_sysdev_console sysdev 60 -- console)
cr_case(bad_restore_sysdev_swapped sysdev 60 --helper $<TARGET_FILE:cr-sysdev> --helper-arg swap
	--helper-after-dump --expect-restore-fail --expect-msg "is device 1:3 now, 5:1 at the dump"
	-- console)
# A virtual terminal that is the controlling terminal of a session the
# tree leads (zdtm vt): reopened by path and taken back by its leader,
# its foreground group too (tty-system.c); one no fd names is refused.
cr_case(cr_sysdev_vt sysdev 60 -- vt)
cr_case(bad_dump_sysdev_vt_closed sysdev 60 --expect-dump-fail --expect-msg %p
	--expect-msg "open in no fd" -- vt-closed)
set_tests_properties(cr_sysdev_vt bad_dump_sysdev_vt_closed PROPERTIES RUN_SERIAL ON)
