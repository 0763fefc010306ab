# Tests of rack-agent/uplink/journal.{h,c}: the event journal.
rackboot_unit_test(test_journal LIBS rb_uplink TIMEOUT 120)
target_include_directories(test_journal PRIVATE ${CMAKE_SOURCE_DIR}/rack-agent)
# The segment parser and the recovery at open, over any bytes.
rackboot_fuzz_target(fuzz_journal LIBS rb_uplink)
target_include_directories(fuzz_journal PRIVATE ${CMAKE_SOURCE_DIR}/rack-agent)
# A failed fsync is provoked by wrapping fdatasync(2) (test_journal.c).
target_link_options(test_journal PRIVATE -Wl,--wrap=fdatasync)
