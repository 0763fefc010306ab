# Tests of deploy/: the systemd units verified by systemd-analyze, with
# their security exposure scores printed.
add_test(NAME integration.systemd_units
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/integration/systemd_units.sh
                 ${PROJECT_SOURCE_DIR}/deploy/systemd $<TARGET_FILE:rackboot-agent>
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>)
set_tests_properties(integration.systemd_units PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)

# The daemons drop root for the rackboot user after binding (the user is
# created if missing, as the packages will).
add_test(NAME integration.privileges
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/privileges.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-agent>
                 $<TARGET_FILE:rackboot-pki> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.privileges PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77)
