# Packet and netlink sockets (libckpt/sk-packet.c, sk-netlink.c): every
# type, bound or not, options, memberships, fanout, rings mapped at their
# address; netlink portids (bound, autobound), groups, peers.
cr_program(packet-nl)
# (cr-sk-helper is sockets.cmake's, included after this file)
set(PNL_HELPER --helper $<TARGET_FILE:cr-sk-helper> --helper-arg)
cr_case(cr_packet packet-nl 60 -- packet)
cr_case(cr_netlink packet-nl 60 -- netlink)
add_test(NAME selfcheck_netlink COMMAND $<TARGET_FILE:cr-run> --timeout 45 --no-cr --
	$<TARGET_FILE:cr-packet-nl> netlink)
set_tests_properties(selfcheck_netlink PROPERTIES TIMEOUT 60 LABELS selfcheck)
# What cannot come back exactly is refused by name at dump: a frame
# received and not read, a TX ring frame written.
cr_case(bad_dump_packet_queued packet-nl 60 --expect-dump-fail --expect-msg %p
	--expect-msg "packets received and not read yet" -- packet-queued)
cr_case(bad_dump_packet_tx_used packet-nl 60 --expect-dump-fail --expect-msg %p
	--expect-msg "TX ring holds frames" -- packet-tx-used)
# A protocol whose kernel side may keep state of the socket (genetlink).
cr_case(bad_dump_netlink_generic packet-nl 60 --expect-dump-fail --expect-msg %p
	--expect-msg "protocol 16" -- netlink-generic)
# A fanout group with a member outside the tree (cr-sk-helper's).
cr_case(bad_dump_packet_fanout_outside packet-nl 60 ${PNL_HELPER} fanout-hold
	--expect-dump-fail --expect-msg %p --expect-msg "member outside the tree"
	-- fanout-outside)
# A fanout group id or a netlink portid taken here since the dump (by
# cr-sk-helper): the restore is refused, naming it.
cr_case(bad_restore_packet_fanout_taken packet-nl 60 ${PNL_HELPER} fanout-hold
	--helper-after-dump --expect-restore-fail --expect-msg "fanout group"
	--expect-msg "is in use here" -- fanout-hold)
cr_case(bad_restore_netlink_portid_taken packet-nl 60 ${PNL_HELPER} portid-hold
	--helper-after-dump --expect-restore-fail --expect-msg "portid"
	--expect-msg "is taken here" -- portid-hold)
# restore --verify reads the options of packet and netlink sockets back:
# one made wrong after its read-back (CKPT_TEST_FAULT=sockopt) is named.
cr_case(bad_restore_verify_packet_sockopt packet-nl 60 --expect-restore-fail
	--expect-msg "socket option SO_PRIORITY" --expect-msg "restore --verify" -- packet)
cr_case(bad_restore_verify_netlink_sockopt packet-nl 60 --expect-restore-fail
	--expect-msg "socket option SO_PRIORITY" --expect-msg "restore --verify" -- netlink)
set_tests_properties(bad_restore_verify_packet_sockopt bad_restore_verify_netlink_sockopt
	PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=sockopt)
# A membership added once less (CKPT_TEST_FAULT=packet-mreq): --verify
# reads packet_diag's list of the restored socket and names the count.
cr_case(bad_restore_verify_packet_mreq packet-nl 60 --expect-restore-fail
	--expect-msg "packet membership count 1, dumped 2" --expect-msg "restore --verify" -- packet)
set_tests_properties(bad_restore_verify_packet_mreq PROPERTIES ENVIRONMENT
	CKPT_TEST_FAULT=packet-mreq)
# Netlink and packet sockets see their network namespace: --netns always
# refuses, naming the socket.
cr_case(bad_restore_netns_netlink packet-nl 60 --restore-opt --netns --restore-opt always
	--expect-restore-fail --expect-msg "a netlink socket sees the network namespace"
	-- netlink)
