# Tests of deploy/: the systemd units verified by systemd-analyze, with
# their security exposure scores printed.
add_test(NAME integration.systemd_units
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/integration/systemd_units.sh
                 ${PROJECT_SOURCE_DIR}/deploy/systemd $<TARGET_FILE:rackboot-agent>
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>)
set_tests_properties(integration.systemd_units PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
