# Sockets (libckpt/sk-unix.c, sk-inet.c): unix socketpairs and named
# sockets, external unix sockets, TCP and UDP.
cr_program(unix-sk)
cr_case(cr_unix_pairs unix-sk 60 -- pairs)
cr_case(cr_unix_named unix-sk 60 -- named)
cr_case(cr_unix_pingpong unix-sk 60 --leave-running-twice --check-progress -- pingpong)
cr_case(cr_unix_scm unix-sk 60 -- scm)
cr_case(cr_unix_pending unix-sk 60 -- pending)
cr_case(bad_dump_unix_pending_data unix-sk 60 --expect-dump-fail --expect-msg %p
	--expect-msg "sent data" -- pending-data)
cr_case(cr_unix_scm_loop unix-sk 60 -- scm-loop)
# Names whose path is gone: a directory removed since the bind (zdtm
# sk-unix01), a socket file replaced by a FIFO (fifo_upon_unix_socket00).
cr_case(cr_unix_gone_dir unix-sk 60 -- gone-dir)
cr_case(cr_unix_fifo_name unix-sk 60 -- fifo-name)
foreach(m gone-dir fifo-name)
	string(REPLACE "-" "_" n "${m}")
	add_test(NAME selfcheck_unix_${n} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-unix-sk> ${m})
	set_tests_properties(selfcheck_unix_${n} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
cr_case(bad_dump_unix_scm_stream unix-sk 60 --expect-dump-fail --expect-msg %p
	--expect-msg "come with 4 stream bytes" -- scm-stream)

# sk_program(NAME): cr-NAME from NAME.c, like cr_program but without its
# selfcheck (these programs need a mode or a helper: their selfchecks are below).
function(sk_program p)
	add_executable(cr-${p} ${p}.c)
	target_compile_options(cr-${p} PRIVATE ${CR_FLAGS} ${CR_PLAIN})
	target_link_options(cr-${p} PRIVATE ${CR_PLAIN})
	target_link_libraries(cr-${p} PRIVATE crlib)
	add_dependencies(cr-tests cr-${p})
endfunction()

# Peers outside the tree: cr-sk-helper, started by cr-run --helper.
add_executable(cr-sk-helper sk-helper.c)
target_compile_options(cr-sk-helper PRIVATE ${CR_FLAGS} ${CR_PLAIN})
add_dependencies(cr-tests cr-sk-helper)
set(SK_HELPER --helper $<TARGET_FILE:cr-sk-helper> --helper-arg)

sk_program(unix-ext)
cr_case(cr_unix_ext_dgram unix-ext 60 ${SK_HELPER} unix-dgram --dump-opt --ext-unix-sk)
cr_case(bad_dump_ext_unix unix-ext 60 ${SK_HELPER} unix-dgram --expect-dump-fail
	--expect-msg %p --expect-msg ext-dgram.sock)
add_test(NAME selfcheck_unix_ext COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
	${SK_HELPER} unix-dgram -- $<TARGET_FILE:cr-unix-ext>)
set_tests_properties(selfcheck_unix_ext PROPERTIES TIMEOUT 60 LABELS selfcheck)
# A stream client of a server outside the tree: restored on a connection
# the restore is handed (--inherit-fd fd[100]:socket:[INO], cr-run --inherit-unix).
cr_case(cr_unix_ext_stream unix-ext 60 ${SK_HELPER} unix-stream --dump-opt --ext-unix-sk
	--inherit-unix ext-stream.sock -- stream)
# Without --inherit-fd that restore is refused, naming the socket.
cr_case(bad_restore_ext_stream unix-ext 60 ${SK_HELPER} unix-stream --dump-opt --ext-unix-sk
	--corrupt rm:inherit-resource --expect-msg inherit-fd -- stream)

# TCP and UDP (sk-inet.c).
sk_program(inet-sk)
cr_case(cr_tcp_listen inet-sk 60 -- listen)
cr_case(cr_tcp_ext inet-sk 60 ${SK_HELPER} tcp-echo --dump-opt --tcp-established -- ext)
cr_case(bad_dump_tcp_established inet-sk 60 ${SK_HELPER} tcp-echo --expect-dump-fail
	--expect-msg %p --expect-msg "its peer is outside the tree" --expect-msg tcp-established
	-- ext)
cr_case(cr_tcp_loopback inet-sk 60 --dump-opt --tcp-established -- loopback)
cr_case(cr_tcp_loopback6 inet-sk 60 --dump-opt --tcp-established -- loopback6)
cr_case(cr_udp inet-sk 60 -- udp)
# A listener's connections not accepted yet: dropped only when asked
# (--skip-in-flight), else the dump is refused naming the option.
cr_case(cr_tcp_inflight inet-sk 60 --dump-opt --tcp-established --dump-opt --skip-in-flight
	-- inflight)
cr_case(cr_tcp_inflight_client inet-sk 60 --dump-opt --skip-in-flight -- inflight-client)
cr_case(bad_dump_tcp_inflight inet-sk 60 --dump-opt --tcp-established --expect-dump-fail
	--expect-msg %p --expect-msg "--skip-in-flight" -- inflight-kept)
cr_case(cr_udp_ext inet-sk 60 ${SK_HELPER} udp-echo -- udp-ext)
foreach(m listen loopback udp)
	add_test(NAME selfcheck_inet_${m} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
		$<TARGET_FILE:cr-inet-sk> ${m})
	set_tests_properties(selfcheck_inet_${m} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
add_test(NAME selfcheck_inet_ext COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
	${SK_HELPER} tcp-echo -- $<TARGET_FILE:cr-inet-sk> ext)
add_test(NAME selfcheck_inet_udp_ext COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
	${SK_HELPER} udp-echo -- $<TARGET_FILE:cr-inet-sk> udp-ext)
set_tests_properties(selfcheck_inet_ext selfcheck_inet_udp_ext PROPERTIES TIMEOUT 60
	LABELS selfcheck)
# Dumps with -R killed mid-way: the connection, in use all along, must
# never stay in repair mode (the watchdog of sk-inet.c).
cr_case(killdump_tcp inet-sk 300 ${SK_HELPER} tcp-echo --dump-opt --tcp-established
	--kill-dump 10 -- ext-loop)
# A dump that fails once the connection is in repair mode (fault injected):
# the tree goes on, the watchdog takes the connection out of repair mode.
cr_case(bad_dump_tcp_fault inet-sk 60 ${SK_HELPER} tcp-echo --dump-opt --tcp-established
	--expect-dump-fail --expect-msg %p --expect-msg CKPT_FAULT -- ext-loop)
set_tests_properties(bad_dump_tcp_fault PROPERTIES ENVIRONMENT CKPT_FAULT=after-tcp-repair)
add_test(NAME selfcheck_inet_ext_loop COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
	${SK_HELPER} tcp-echo -- $<TARGET_FILE:cr-inet-sk> ext-loop)
set_tests_properties(selfcheck_inet_ext_loop PROPERTIES TIMEOUT 60 LABELS selfcheck)
# restore --tcp-close: connections come back closed (as reset by their
# peer), with what they had received; a user's restore may not send the
# reset (CAP_NET_RAW): refused by name.
cr_case(cr_tcp_close inet-sk 60 --restore-opt --tcp-close -- tcp-close)
# A peer outside the tree that writes all along, also while the tree is
# gone: the network lock (net-lock.c) drops its segments until the
# restored tree runs, so that none meets a closed port and resets the
# connection; a dump that leaves the tree running, or fails, lifts it.
cr_case(cr_tcp_ext_push inet-sk 60 ${SK_HELPER} tcp-push --dump-opt --tcp-established
	-- ext-push)
cr_case(cr_tcp_ext_push_leave_running inet-sk 90 ${SK_HELPER} tcp-push --dump-opt
	--tcp-established --leave-running-twice -- ext-push)
cr_case(bad_dump_tcp_push_fault inet-sk 60 ${SK_HELPER} tcp-push --dump-opt --tcp-established
	--expect-dump-fail --expect-msg %p --expect-msg CKPT_FAULT -- ext-push)
set_tests_properties(bad_dump_tcp_push_fault PROPERTIES ENVIRONMENT CKPT_FAULT=after-tcp-repair)
add_test(NAME selfcheck_inet_ext_push COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
	${SK_HELPER} tcp-push -- $<TARGET_FILE:cr-inet-sk> ext-push)
set_tests_properties(selfcheck_inet_ext_push PROPERTIES TIMEOUT 60 LABELS selfcheck)
# Two dumps with -R first: the connection leaves repair mode and goes on.
cr_case(cr_tcp_ext_leave_running inet-sk 90 ${SK_HELPER} tcp-echo --dump-opt --tcp-established
	--leave-running-twice -- ext)
# Raw, ICMP ping and UDP-Lite sockets (sk-raw.c): raw and ping ones in a
# network namespace of their own (a raw socket sees every packet of its
# protocol in its namespace: the node's traffic would fill its queue), with
# ping sockets let in there; a raw socket's unread packet refused by name.
sk_program(raw-sk)
set(RAW_PING_NET --own-netns --net-sysctl "ipv4/ping_group_range=0 2147483647")
cr_case(cr_raw_sk raw-sk 60 --own-netns -- raw)
cr_case(cr_ping_sk raw-sk 60 ${RAW_PING_NET} -- ping)
cr_case(cr_udplite raw-sk 60 -- udplite)
cr_case(bad_dump_raw_unread raw-sk 60 --own-netns --expect-dump-fail --expect-msg %p
	--expect-msg "raw socket with datagrams received and not read yet" -- raw-unread)
# A fresh network namespace has the kernel's ping_group_range, which lets
# no one make a ping socket: the restore fails naming it.
cr_case(bad_restore_ping_netns raw-sk 60 ${RAW_PING_NET} --restore-opt --netns --restore-opt always
	--expect-restore-fail --expect-msg "ICMP" --expect-msg "net.ipv4.ping_group_range" -- ping)
foreach(m raw ping udplite)
	add_test(NAME selfcheck_raw_sk_${m} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
		${RAW_PING_NET} -- $<TARGET_FILE:cr-raw-sk> ${m})
	set_tests_properties(selfcheck_raw_sk_${m} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
# Socket options (sk-opts.c): every option of every kept state comes back
# exactly; an eBPF socket filter, which cannot be read back, is refused.
sk_program(inet-opts)
cr_case(cr_inet_opts inet-opts 60 --dump-opt --tcp-established -- all)
# bound to an address of no interface, with the freebind option cleared since
cr_case(cr_inet_freebind inet-opts 60 -- freebind)
# a TCP socket whose connection both ends shut down: its last MSS is no setting
cr_case(cr_inet_closed_mss inet-opts 60 -- closed)
cr_case(bad_dump_inet_ebpf inet-opts 60 --expect-dump-fail --expect-msg %p
	--expect-msg SO_ATTACH_BPF -- ebpf)
# restore --verify reads every option the restore set again: one made
# wrong on purpose after its read-back (CKPT_TEST_FAULT=sockopt) is named.
cr_case(bad_restore_verify_sockopt inet-opts 60 --expect-restore-fail
	--expect-msg "socket option SO_PRIORITY" --expect-msg "restore --verify"
	--dump-opt --tcp-established -- all)
set_tests_properties(bad_restore_verify_sockopt PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=sockopt)
add_test(NAME selfcheck_inet_opts COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
	$<TARGET_FILE:cr-inet-opts> all)
set_tests_properties(selfcheck_inet_opts PROPERTIES TIMEOUT 60 LABELS selfcheck)
# Ports (sk-ports.c).  A listener whose port holds a TIME_WAIT socket of the
# program's own (sk_reuse 0: it blocks a bind even with SO_REUSEADDR): the
# restore closes it and the listener accepts again.
cr_case(cr_tcp_listen_timewait inet-sk 60 -- timewait)
add_test(NAME selfcheck_inet_timewait COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
	$<TARGET_FILE:cr-inet-sk> timewait)
set_tests_properties(selfcheck_inet_timewait PROPERTIES TIMEOUT 60 LABELS selfcheck)
# Listeners (and UDP sockets) sharing a port with SO_REUSEPORT, which one
# of them cleared since: each binds again (zdtm socket-tcp-reuseport).
cr_case(cr_inet_reuseport inet-sk 60 -- reuseport)
add_test(NAME selfcheck_inet_reuseport COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
	$<TARGET_FILE:cr-inet-sk> reuseport)
set_tests_properties(selfcheck_inet_reuseport PROPERTIES TIMEOUT 60 LABELS selfcheck)
# A job that ran on after a -R dump and exited (its connection closed,
# leaving a TIME_WAIT socket of the same 4-tuple), then that dump restored.
# With timestamps the kernel reuses the TIME_WAIT socket; without (in a
# namespace of the case's own, tcp_timestamps 0) the restore closes it.
cr_case(cr_tcp_loopback_after_exit inet-sk 90 --dump-opt --tcp-established
	--restore-after-exit -- loopback)
cr_case(cr_tcp_loopback_after_exit_nots inet-sk 90 --own-netns --net-sysctl
	ipv4/tcp_timestamps=0 --dump-opt --tcp-established --restore-after-exit -- loopback)
# Connections whose both ends are the tree's are dumped without
# --tcp-established: in one process, and between two.
cr_case(cr_tcp_loopback_internal inet-sk 60 -- loopback)
cr_case(cr_tcp_loopback6_internal inet-sk 60 -- loopback6)
cr_case(cr_tcp_pair inet-sk 60 -- pair)
add_test(NAME selfcheck_inet_pair COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
	$<TARGET_FILE:cr-inet-sk> pair)
set_tests_properties(selfcheck_inet_pair PROPERTIES TIMEOUT 60 LABELS selfcheck)
# A fresh network namespace (restore-netns.c).  The listener's port is taken
# once the test is gone (cr-sk-helper tcp-hold): --netns never fails naming
# it; auto (the default) restores into a fresh namespace, where the
# listener accepts a client of the tree.
cr_case(cr_tcp_port_taken inet-sk 60 ${SK_HELPER} tcp-hold --helper-after-dump
	--fail-first-opt --netns --fail-first-opt never --expect-msg "port taken by a live socket"
	--expect-msg "(use --netns auto)" --restore-opt --stats --expect-restore-out "netns: 1"
	-- taken)
# --netns always: connections inside the job, in one process and between
# two (with a fresh PID namespace too), UDP, and a job on an address of
# this node (which the namespace gets on lo).
cr_case(cr_tcp_loopback_netns inet-sk 60 --restore-opt --netns --restore-opt always
	--restore-opt --stats --expect-restore-out "netns: 1" -- loopback)
cr_case(cr_tcp_pair_netns_pidns inet-sk 60 --restore-opt --netns --restore-opt always
	--restore-opt --pidns --restore-opt always --restore-opt --stats
	--expect-restore-out "netns: 1" -- pair)
cr_case(cr_udp_netns inet-sk 60 --restore-opt --netns --restore-opt always -- udp)
cr_case(cr_tcp_node_netns inet-sk 60 --restore-opt --netns --restore-opt always
	--restore-opt --stats --expect-restore-out "netns: 1" -- node)
# A job connected to a peer outside it: --netns always refuses, naming it.
cr_case(bad_restore_netns_ext inet-sk 60 ${SK_HELPER} tcp-echo --dump-opt --tcp-established
	--restore-opt --netns --restore-opt always --expect-restore-fail
	--expect-msg "its peer is outside the job" -- ext)
# A tree restored into a fresh network namespace is dumped from inside it
# (dump.c: sock_diag and the parasite's socket), and restored again.
cr_case(cr_tcp_pair_netns_redump inet-sk 90 --restore-opt --netns --restore-opt always --redump
	-- pair)
# Half-closed connections (sk-tcp.c): each state with both ends in the
# tree (over IPv4, IPv6 and v4-mapped IPv6), and with the peer outside.
sk_program(tcp-half)
foreach(m close-wait fin-wait1 last-ack closing)
	foreach(f 4 6 46)
		string(REPLACE "-" "_" n "${m}")
		cr_case(cr_tcp_half_${n}_${f} tcp-half 60 -- ${m}-${f})
	endforeach()
	add_test(NAME selfcheck_tcp_half_${m} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
		-- $<TARGET_FILE:cr-tcp-half> ${m})
	set_tests_properties(selfcheck_tcp_half_${m} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
# The FINs forgotten (fault injected): restore --verify names the state.
# (With both ends in the tree the shutdown the restore puts back would
# send the peer's FIN for real: a peer outside sends nothing.)
cr_case(bad_restore_tcp_half_verify tcp-half 60 ${SK_HELPER} tcp-half --dump-opt
	--tcp-established --expect-restore-fail --expect-msg "TCP state"
	--expect-msg "dumped CLOSE_WAIT"
	--expect-msg verify -- ext-close-wait)
# SYN_SENT (a SYN the helper's full listener drops): it connects again
# after the restore, and the connection is made once the helper accepts.
cr_case(cr_tcp_syn_sent tcp-half 60 ${SK_HELPER} tcp-full --dump-opt --tcp-established
	-- syn-sent)
cr_case(cr_tcp_syn_sent_46 tcp-half 60 ${SK_HELPER} tcp-full --dump-opt --tcp-established
	-- syn-sent-46)
cr_case(cr_tcp_syn_sent_blocking tcp-half 60 ${SK_HELPER} tcp-full --dump-opt
	--tcp-established -- syn-block)
foreach(m syn-sent syn-block)
	add_test(NAME selfcheck_tcp_half_${m} COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr
		${SK_HELPER} tcp-full -- $<TARGET_FILE:cr-tcp-half> ${m})
	set_tests_properties(selfcheck_tcp_half_${m} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
# Restored into a fresh network namespace: the peer's segments are written
# there (the raw socket is the restoring task's).
cr_case(cr_tcp_half_closing_netns tcp-half 60 --restore-opt --netns --restore-opt always
	--restore-opt --stats --expect-restore-out "netns: 1" -- closing-6)
cr_case(cr_tcp_half_close_wait_netns tcp-half 60 --restore-opt --netns --restore-opt always
	-- close-wait-46)
# Buffers grown by the kernel: megabytes unsent, more than a new socket's
# send buffer takes (zdtm socket-tcp-last-ack hung on it).
cr_case(cr_tcp_half_fin_wait1_auto tcp-half 60 -- fin-wait1-auto)
cr_case(cr_tcp_half_last_ack_auto tcp-half 60 -- last-ack-auto-6)
foreach(m close-wait fin-wait2)
	string(REPLACE "-" "_" n "${m}")
	cr_case(cr_tcp_half_ext_${n} tcp-half 60 ${SK_HELPER} tcp-half --dump-opt
		--tcp-established -- ext-${m})
	add_test(NAME selfcheck_tcp_half_ext_${m} COMMAND $<TARGET_FILE:cr-run> --timeout 45
		--no-cr ${SK_HELPER} tcp-half -- $<TARGET_FILE:cr-tcp-half> ext-${m})
	set_tests_properties(selfcheck_tcp_half_ext_${m} PROPERTIES TIMEOUT 60 LABELS selfcheck)
endforeach()
set_tests_properties(bad_restore_tcp_half_verify PROPERTIES ENVIRONMENT CKPT_FAULT=skip-tcp-fins)
# Socket options of unix sockets (sk-unix.c with sk-opts.c's table): every
# option of the list comes back exactly, buffers left unlocked stay so.
cr_program(unix-opts)
cr_case(cr_unix_opts unix-opts 60)
