# Tests of rack-agent/.
rackboot_unit_test(test_dhcp6_wire LIBS rb_dhcp6)
rackboot_unit_test(test_dhcp6_server LIBS rb_dhcp6)
target_include_directories(test_dhcp6_wire PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
target_include_directories(test_dhcp6_server PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
rackboot_fuzz_target(fuzz_dhcp6 LIBS rb_dhcp6)
