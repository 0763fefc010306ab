# Tests of common/.
rackboot_unit_test(test_cursor LIBS rb_common)
rackboot_unit_test(test_log LIBS rb_common)
