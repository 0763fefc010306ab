# Tests of cli/ (the rackboot command line).
rackboot_unit_test(test_cli_hosts_csv LIBS rb_cli)
rackboot_unit_test(test_cli_render LIBS rb_cli)
rackboot_unit_test(test_cli_args LIBS rb_cli)

# End to end: a real rackboot-controller on an ipc:// socket in a temp dir,
# driven by the rackboot binary (imports, install, status --json, cancel,
# exit codes; viewer and operator certificates over TLS, the audit log).
# Skips (77) when the controller is not built.
if(TARGET rackboot AND TARGET rackboot-controller)
  add_test(NAME integration.cli_flows
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/cli_flows.sh
                   $<TARGET_FILE:rackboot> $<TARGET_FILE:rackboot-controller>
                   ${CMAKE_SOURCE_DIR}/deploy/examples $<TARGET_FILE:rackboot-pki>)
  set_tests_properties(integration.cli_flows PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                       LABELS integration)
  # An install and a cancel of 12,345 hosts: more than one slice.
  add_test(NAME integration.install_slices
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/integration/install_slices.sh
                   $<TARGET_FILE:rackboot> $<TARGET_FILE:rackboot-controller>)
  set_tests_properties(integration.install_slices PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                       LABELS integration)
endif()

# Listings in pages (issue 13): 3,000 hosts imported from a generated CSV,
# events from rb-fake-agent; hosts list, status and events with --limit and
# --after give disjoint consecutive pages whose concatenation is the whole
# listing, --json parses and holds every row. Skips (77) without python3.
if(TARGET rackboot AND TARGET rackboot-controller AND TARGET rb-fake-agent)
  add_test(NAME integration.cli_listing_pages
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/listing_pages.sh
                   $<TARGET_FILE:rackboot> $<TARGET_FILE:rackboot-controller>
                   $<TARGET_FILE:rackboot-pki> $<TARGET_FILE:rb-fake-agent>)
  set_tests_properties(integration.cli_listing_pages PROPERTIES TIMEOUT 300
                       SKIP_RETURN_CODE 77 LABELS integration)
endif()

# Fuzzed: `hosts import FILE.csv`.
rackboot_fuzz_target(fuzz_hosts_csv LIBS rb_cli)
