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

# The program end to end: a Python stand-in for the agent on [::1] serves the
# image and records the progress reports; a regular file stands for the disk.
add_test(NAME integration.deploy_writer
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/integration/deploy_writer.sh
                 $<TARGET_FILE:rackboot-deploy>)
set_tests_properties(integration.deploy_writer PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)

# The same on a loop device: O_DIRECT, the device's size, an unaligned tail.
# Needs root and a free loop device, else skips (77).
add_test(NAME integration.deploy_writer_blockdev
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/integration/deploy_writer_blockdev.sh
                 $<TARGET_FILE:rackboot-deploy>)
set_tests_properties(integration.deploy_writer_blockdev PROPERTIES TIMEOUT 120
                     SKIP_RETURN_CODE 77)

# After the write: the GPT fitted to the disk (libfdisk) and the NoCloud seed
# partition (mtools), judged with sfdisk/sgdisk/mtools/blkid; on a sparse
# file, and on a loop device when root.
add_test(NAME integration.deploy_seed
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/integration/deploy_seed.sh
                 $<TARGET_FILE:rackboot-deploy>)
set_tests_properties(integration.deploy_seed PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)

# The deploy ramdisk booted in QEMU (TCG): deploy-ramdisk/build-ramdisk.sh
# builds it (cached by content in /var/cache/rackboot/ramdisk; the first
# build, with the kernel download and a Release build of rackboot-deploy,
# takes ~2.5 min), a stand-in agent in a network namespace serves a small
# GPT image and the seed, and the disk is checked after the VM reboots.
# Skips (77) without root, ip netns, /dev/net/tun or QEMU. Run it alone with
# `ctest -L deploy_ramdisk_boot`.
add_test(NAME e2e.deploy_ramdisk_boot
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/deploy_ramdisk_boot.sh
                 ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/deploy-ramdisk-out)
# COST: with the other VM tests (tests/e2e.cmake).
set_tests_properties(e2e.deploy_ramdisk_boot PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 COST 16
                     LABELS "e2e;deploy_ramdisk_boot" RESOURCE_LOCK rackboot-qemu)
