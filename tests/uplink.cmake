# Tests of the agent's controller uplink (rack-agent/uplink.*).
rackboot_unit_test(test_uplink LIBS rb_uplink TIMEOUT 60)
# The install flow's routes and events (rack-agent/boot.*, progress.*).
rackboot_unit_test(test_boot LIBS rb_boot TIMEOUT 60)
