# Tests of model/: the image-kind table, profile rules and copies (the
# template engine and the hosts-file parser are tested with their users:
# render.cmake, rack-agent.cmake).
rackboot_unit_test(test_model LIBS rb_model)
