# Tests of controller/.
rackboot_unit_test(test_install_fsm LIBS rb_install_fsm TIMEOUT 30)
# Includes a crash test (a child killed mid-ingest) and a timed ingest of
# 20,000 events, so it gets more time under the sanitizers.
rackboot_unit_test(test_store LIBS rb_store TIMEOUT 300)
