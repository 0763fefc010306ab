# Tests of the agent's controller uplink (rack-agent/uplink.*).
rackboot_unit_test(test_uplink LIBS rb_uplink TIMEOUT 60)
