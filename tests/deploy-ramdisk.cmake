# Tests of deploy-ramdisk/: the image writer's modules, and the program.
rackboot_unit_test(test_decomp LIBS rb_deploy_writer)
rackboot_unit_test(test_sink LIBS rb_deploy_writer)
rackboot_unit_test(test_rootdev LIBS rb_deploy_writer)
rackboot_unit_test(test_deploy_progress LIBS rb_deploy_writer)
# Against an HTTP server inside the test (a thread on [::1]) that drops
# connections, ignores Range, answers wrong ranges and serves wrong bytes.
rackboot_unit_test(test_stream LIBS rb_deploy_writer Threads::Threads TIMEOUT 120)

# The decompressor front end (magic sniffing, chunking, zstd/xz errors).
rackboot_fuzz_target(fuzz_decomp LIBS rb_deploy_writer)
