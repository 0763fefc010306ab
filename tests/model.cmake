# Tests of model/: the image-kind table, profile rules and copies (the
# template engine and the hosts-file parser are tested with their users:
# render.cmake, rack-agent.cmake).
rackboot_unit_test(test_model LIBS rb_model)
# model/bmc: the password rules (a password file's content and mode).
rackboot_unit_test(test_model_bmc LIBS rb_model)
# model/hostsfile: the [host] BMC keys (the rest of the format is tested
# with its users).
rackboot_unit_test(test_hostsfile LIBS rb_model)
