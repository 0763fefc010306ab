# Tests of rack-agent/tftp/ and rack-agent/files/files.c.
rackboot_unit_test(test_tftp_wire LIBS rb_tftp)
rackboot_unit_test(test_tftp_transfer LIBS rb_tftp)
rackboot_fuzz_target(fuzz_tftp LIBS rb_tftp)
rackboot_unit_test(test_files LIBS rb_files)
# The server's sockets over ::1 on a private loop: no root needed.
rackboot_unit_test(test_tftp_server LIBS rb_tftp)

# Real TFTP clients (tftp-hpa, atftp, and a raw client for the protocol
# cases) against the agent in network namespaces of their own. They need
# root and `ip netns`, and skip (exit 77) otherwise.
foreach(t hpa atftp protocol ipxe)
  add_test(NAME integration.tftp_${t}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/tftp_${t}.sh
                   $<TARGET_FILE:rackboot-agent>)
  set_tests_properties(integration.tftp_${t} PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77
                       LABELS integration)
endforeach()
