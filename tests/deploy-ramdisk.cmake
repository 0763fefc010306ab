# Tests of deploy-ramdisk/: the image writer's modules, and the program.
rackboot_unit_test(test_decomp LIBS rb_deploy_writer)
rackboot_unit_test(test_sink LIBS rb_deploy_writer)
rackboot_unit_test(test_rootdev LIBS rb_deploy_writer)
rackboot_unit_test(test_deploy_progress LIBS rb_deploy_writer)
