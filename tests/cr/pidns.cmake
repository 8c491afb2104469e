# A tree restored into a PID namespace of its own (--pidns always, or auto
# when a pid is taken) is checkpointed again: its images keep the pids its
# processes know, not ours (freeze.h), and it restores again.
cr_case(cr_threads_pidns_redump threads 90 --restore-opt --pidns --restore-opt always --redump)
cr_case(cr_timers_pidns_redump timers 90 --restore-opt --pidns --restore-opt always --redump)
cr_case(cr_tty_pidns_redump tty 90 --restore-opt --pidns --restore-opt always --redump -- pty)
cr_case(cr_unix_pidns_redump unix-sk 90 --restore-opt --pidns --restore-opt always --redump
	-- pairs)
