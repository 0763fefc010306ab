# Tests of the agent's install flow: the controller uplink (uplink.*), the
# boot routes and their events (boot.*, progress.*).
rackboot_unit_test(test_uplink LIBS rb_uplink TIMEOUT 60)
rackboot_unit_test(test_boot LIBS rb_install TIMEOUT 60)

# The routes on a standalone agent with curl from the host's address and
# another one (root and `ip netns`, else skipped with 77).
add_test(NAME integration.boot_routes
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/boot_routes.sh
                 $<TARGET_FILE:rackboot-agent>)
set_tests_properties(integration.boot_routes PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                     LABELS integration)

# The routes of an image deploy: scripts that boot the deploy ramdisk,
# /deploy/ ([deploy] ramdisk) and the NoCloud seed at /seed/.
add_test(NAME integration.seed_routes
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/seed_routes.sh
                 $<TARGET_FILE:rackboot-agent>)
set_tests_properties(integration.seed_routes PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                     LABELS integration)

# progress.c: `installed` completes only once durable; a full disk or a
# failed sync answers "not recorded" (fdatasync(2) wrapped to fail it).
rackboot_unit_test(test_progress LIBS rb_install TIMEOUT 60)
target_link_options(test_progress PRIVATE -Wl,--wrap=fdatasync)

# Fuzzed: the installer's progress form, and a controller's sync through the
# intents to every file rendered from it.
rackboot_fuzz_target(fuzz_boot_form LIBS rb_install)
rackboot_fuzz_target(fuzz_sync_render LIBS rb_uplink rb_render)
