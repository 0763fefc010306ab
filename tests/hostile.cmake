# Hostile-client tests (issue #11, part 3): slow-loris and header floods on
# HTTP, a DHCPv6 flood of random DUIDs, TFTP missing-file floods and slot
# exhaustion, an authenticated agent sending oversized and malformed
# messages to the controller. Each bounds its load by count and by time,
# checks that others are still served and that the daemon's memory stays
# bounded (tests/hostile/lib.sh). The agent's tests need root and `ip netns`
# and skip (77) otherwise; the controller's runs on loopback.
# ctest -L hostile
foreach(t http_slowloris dhcp6_flood tftp_flood)
  add_test(NAME hostile.${t}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/hostile/${t}.sh
                   $<TARGET_FILE:rackboot-agent>)
  set_tests_properties(hostile.${t} PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                       LABELS hostile)
endforeach()
add_test(NAME hostile.uplink_abuse
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/hostile/uplink_abuse.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>
                 $<TARGET_FILE:rb-fake-agent> $<TARGET_FILE:rackboot>)
set_tests_properties(hostile.uplink_abuse PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                     LABELS hostile)
