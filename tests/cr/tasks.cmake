# Per-process state (timers, identity, scheduling, trees): cases of
# libckpt/taskstate.c, restore-state.c and the restorer blob.
cr_program(timers)
target_link_libraries(cr-timers PRIVATE rt)
cr_case(cr_timers timers 90)
# Periodic timers whose thread waits for their signal 32 (SIG_IGN), as
# glibc's SIGEV_THREAD timers do: the restorer ran with 32 open, the
# kernel dropped the pending signal and parked the timer for good.
cr_program(timer-thread)
target_link_libraries(cr-timer-thread PRIVATE rt)
cr_case(cr_timer_thread_pending timer-thread 60 -- pending)
cr_case(cr_timer_thread_sigev timer-thread 90 --redump -- sigev-thread)
cr_program(ident)
cr_case(cr_ident ident 60)
cr_program(sched)
cr_case(cr_sched sched 60)
# Seccomp filters, stacked, in every thread (shared: one TSYNC chain).
cr_program(seccomp)
cr_case(cr_seccomp seccomp 60)
# A thread with a filter of its own (restore-state.c shared_prefix).
cr_case(cr_seccomp_threads seccomp 60 -- differ)
# Filters installed without no_new_privs, then CAP_SYS_ADMIN dropped: the
# restore installs them before the final capset (restore-finish.c).
cr_case(cr_seccomp_no_nnp seccomp 60 -- no-nnp)
# A filter that fails socket/connect (the parasite's: freeze.c suspends
# seccomp), and a TSYNC filter after the restore (one chain shared by
# every thread, restore-finish.c).
cr_case(cr_seccomp_tsync seccomp 60 -- tsync)
# A thread in strict mode (entered last, restore-finish.c enter_strict).
cr_case(cr_seccomp_strict seccomp 60 -- strict)
# A second thread's own pending signals and altstack (core.c, already there).
cr_program(thread-signals)
cr_case(cr_thread_signals thread-signals 60)
# Trees: a SIGSTOPped child stays stopped.
cr_program(stopped)
cr_case(cr_stopped stopped 60)
set_tests_properties(cr_stopped PROPERTIES ENVIRONMENT CR_STATES_OK=T)
# ... also with a second SIGSTOP pending (restore-mem.c copy_pending)
cr_case(cr_stopped_twice stopped 60 -- twice)
set_tests_properties(cr_stopped_twice PROPERTIES ENVIRONMENT CR_STATES_OK=T)
cr_case(cr_stopped_pidns stopped 60 --restore-opt --pidns --restore-opt always)
set_tests_properties(cr_stopped_pidns PROPERTIES ENVIRONMENT CR_STATES_OK=T)
# Default signal actions stay default under our init in a new PID
# namespace (which has handlers of its own for SIGHUP, SIGCONT...).
cr_case(cr_signals_pidns signals 60 --restore-opt --pidns --restore-opt always)
# A vfork parent cannot be frozen (uninterruptible wait, one shared mm):
# refused by name, without hanging.
cr_program(vfork)
cr_case(bad_dump_vfork vfork 60 --expect-dump-fail --expect-msg vfork)
# ... but the vforks of posix_spawn end at once: waited out, the dump
# goes through (twice left running, then the cycle).
cr_case(cr_vfork_spawn vfork 60 --leave-running-twice -- spawn)
# Trees: zombie children (one a process group leader) stay zombies.
cr_program(zombie)
cr_case(cr_zombie zombie 60)
cr_case(cr_zombie_pidns zombie 60 --restore-opt --pidns --restore-opt always)
set_tests_properties(cr_zombie cr_zombie_pidns PROPERTIES ENVIRONMENT CR_STATES_OK=Z)
# Trees: an orphaned process group (leader gone) is recreated.
cr_program(orphan-pgrp)
cr_case(cr_orphan_pgrp orphan-pgrp 60)
cr_case(cr_orphan_pgrp_pidns orphan-pgrp 60 --restore-opt --pidns --restore-opt always)
# Trees: a session whose leader is gone is recreated, with its groups.
cr_program(orphan-session)
cr_case(cr_orphan_session orphan-session 60)
cr_case(cr_orphan_session_pidns orphan-session 60 --restore-opt --pidns --restore-opt always)
# Processes sharing one fd table (CLONE_FILES) or fs (CLONE_FS) share it
# again; a table shared with a process that is not the parent, a shared
# fs under a chroot, a thread's own table are refused by name.
cr_program(clone-files)
cr_case(cr_clone_files clone-files 60 -- tree)
cr_case(cr_clone_files_pidns clone-files 60 --restore-opt --pidns --restore-opt always -- tree)
cr_case(cr_clone_files_seccomp clone-files 60 -- seccomp)
cr_case(bad_dump_clone_files_sibling clone-files 60 --expect-dump-fail
	--expect-msg "not with its parent %p" -- sibling)
cr_case(cr_clone_fs clone-files 60 -- fs)
cr_case(cr_clone_fs_pidns clone-files 60 --restore-opt --pidns --restore-opt always -- fs)
cr_case(bad_dump_clone_fs_chroot clone-files 60 --expect-dump-fail --expect-msg "(CLONE_FS) with pid"
	--expect-msg "(chroot): not supported" -- fs-chroot)
cr_case(bad_dump_thread_fdtable clone-files 60 --expect-dump-fail
	--expect-msg "pid %p: thread" --expect-msg "has an fd table of its own" -- thread)
